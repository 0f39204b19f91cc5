package io.colossal4j.cli;

import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.models.Zoo;
import io.colossal4j.nn.ModuleContext;
import io.colossal4j.nn.UnitModel;
import io.colossal4j.parallel.pipeline.PipelinePlan;
import io.colossal4j.parallel.pipeline.Schedule;
import io.colossal4j.parallel.pipeline.Split;
import io.colossal4j.parallel.pipeline.SplitPolicy;
import io.colossal4j.parallel.pipeline.UnitProfile;
import io.colossal4j.parallel.pipeline.UnitProfiler;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.train.Builders;
import io.colossal4j.train.config.Configs;
import io.colossal4j.train.config.DataConfig;
import io.colossal4j.train.config.OptimizerConfig;
import io.colossal4j.train.config.RunConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * {@code colossal split <config.yaml> [--set key=value ...] [--policy uniform|balanced|profiled] [--split a,b,...]
 * [--no-activations]}: prints the pipeline plan for the config's model and {@code parallel} section: which units
 * each stage holds, its parameters and estimated memory. Activations are measured by running a few samples through
 * the model on the CPU (forward and backward, unit by unit, best of 3) and scaled to the micro-batch size.
 */
final class SplitCommand implements Main.Command {
  @Override public String summary() { return "print the pipeline split of a config's model: stages, units, parameters, memory"; }

  private record Options(Path config, List<String> rest, String policy, List<String> starts, boolean activations) {}

  @Override public int run(String[] args) {
    Options o = parse(args);
    if (o == null) {
      System.err.println("usage: colossal split <config.yaml> [--set key=value ...] [--policy uniform|balanced|profiled] [--split unit,unit,...] [--no-activations]");
      return 2;
    }
    if (!Files.isRegularFile(o.config())) {
      System.err.println("colossal split: config file " + o.config().toAbsolutePath() + " not found");
      return 2;
    }
    RunConfig config = Configs.load(o.config(), Configs.setsFrom(o.rest()));
    var par = config.parallel();
    Schedule schedule = io.colossal4j.train.HybridPlan.schedule(par.schedule());
    int p = par.pipeline(), parts = p * schedule.chunks();
    int world = Math.max(1, par.data()) * par.tensor().size() * p;
    var batch = config.plan(world);
    int[] input = inputShape(config.data());
    try (CpuBackend cpu = CpuBackend.create()) {
      UnitModel model = Builders.model(config.model(), ModuleContext.of(cpu, config.seed()), input[0], input[1], input[2]);
      System.out.printf("model %s: %,d parameters in %d units%n", config.model().name(), model.parameterCount(), model.units().size());
      int states = optimizerStates(config.optimizer());
      boolean profile = o.activations() || o.policy().equals("profiled");
      // a few samples (not a whole micro-batch, which may be large): activations scale linearly with the samples
      int samples = Math.min(batch.microBatchSize(), 4);
      List<UnitProfile> prof = profile ? UnitProfiler.profile(model, sample(model, config, input, samples, cpu), states, 3) : null;
      SplitPolicy policy = switch (o.policy()) {
        case "uniform" -> new SplitPolicy.Uniform();
        case "balanced" -> new SplitPolicy.Balanced();
        case "profiled" -> new SplitPolicy.Profiled(prof);
        case "customized" -> new SplitPolicy.Customized(o.starts());
        default -> throw new IllegalArgumentException("unknown split policy '" + o.policy() + "'; valid: uniform, balanced, profiled (or --split unit,unit,...)");
      };
      Split split = SplitPolicy.split(policy, model.units(), parts);
      long[] perSample = prof == null ? null : prof.stream().mapToLong(u -> u.activationBytes() / samples).toArray();
      String describe = describe(policy);
      System.out.print(PipelinePlan.of(describe, model, split, p, schedule, batch.microBatches(), batch.microBatchSize(), states, perSample).render());
      System.out.println("memory estimate = parameters, gradients and " + states + " optimizer state tensor(s) per parameter in "
          + model.parameters().getFirst().dtype().name().toLowerCase() + ", plus activations measured on " + samples + " sample(s) (CPU, forward graph) scaled to "
          + batch.microBatchSize() + " samples per micro-batch; 'peak' multiplies them by the micro-batches the schedule keeps alive");
    }
    return 0;
  }

  private static String describe(SplitPolicy policy) {
    return switch (policy) {
      case SplitPolicy.Uniform u -> "uniform (equal unit counts)";
      case SplitPolicy.Balanced b -> "balanced (the largest parameter count minimised)";
      case SplitPolicy.Profiled p -> "profiled (the largest share of measured time or memory minimised)";
      case SplitPolicy.Customized c -> "customized (parts begin at " + String.join(", ", c.starts()) + ")";
    };
  }

  private static Options parse(String[] args) {
    Path config = null;
    String policy = "balanced";
    List<String> starts = List.of(), rest = new ArrayList<>();
    boolean activations = true;
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      switch (a) {
        case "--policy" -> { if (++i >= args.length) return null; policy = args[i]; }
        case "--split" -> { if (++i >= args.length) return null; policy = "customized"; starts = Arrays.asList(args[i].split(",")); }
        case "--no-activations" -> activations = false;
        case "--set" -> { if (++i >= args.length) return null; rest.add(a); rest.add(args[i]); }
        default -> {
          if (a.startsWith("--") || config != null) return null;
          config = Path.of(a);
        }
      }
    }
    return config == null ? null : new Options(config, rest, policy, starts, activations);
  }

  /** [classes, channels, image size] of the config's data set, as the trainer would adapt the model to it. */
  static int[] inputShape(DataConfig d) {
    int[] base = switch (d.name()) {
      case FASHION_MNIST, MNIST -> new int[] {10, 1, 28};
      case CIFAR10 -> new int[] {10, 3, 32};
      case IMAGE_FOLDER -> new int[] {0, 3, 224};
      case SYNTHETIC -> new int[] {d.synthetic().numClasses(), d.synthetic().shape().getFirst(), d.synthetic().shape().getLast()};
    };
    if (d.imageSize().isPresent()) base[2] = d.imageSize().get();
    return base;
  }

  private static Tensor sample(UnitModel model, RunConfig config, int[] input, int n, CpuBackend cpu) {
    if (Zoo.entry(config.model().name()).kind() == Zoo.InputKind.TOKENS) {
      int t = model instanceof io.colossal4j.models.gpt.Gpt g ? g.config().blockSize() : 64;
      return Tensor.zeros(Shape.of(n, t), DType.I64, cpu);
    }
    int c = config.model().inChannels().orElse(input[1]), s = config.model().imageSize().orElse(input[2]);
    return Tensor.full(Shape.of(n, c, s, s), DType.F32, cpu, 0.5);
  }

  static int optimizerStates(OptimizerConfig c) {
    return switch (c) {
      case OptimizerConfig.Sgd s -> s.momentum() > 0 ? 1 : 0;
      case OptimizerConfig.Adam a -> 2;
      case OptimizerConfig.AdamW a -> 2;
      case OptimizerConfig.Lamb l -> 2;
      case OptimizerConfig.Lars l -> 1;
    };
  }
}
