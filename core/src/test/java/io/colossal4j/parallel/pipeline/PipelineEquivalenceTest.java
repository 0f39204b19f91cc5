package io.colossal4j.parallel.pipeline;

import io.colossal4j.step.StepHooks;

import static io.colossal4j.parallel.pipeline.PipelineTwin.assertSame;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.colossal4j.backend.Backend;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.distributed.RankThreads;
import io.colossal4j.distributed.cpu.CpuDistributed;
import io.colossal4j.models.ModelSpec;
import io.colossal4j.models.Zoo;
import io.colossal4j.models.gpt.Gpt;
import io.colossal4j.models.gpt.GptConfig;
import io.colossal4j.models.resnet.ResNet;
import io.colossal4j.models.resnet.ResNetConfig;
import io.colossal4j.nn.ModuleContext;
import io.colossal4j.ops.Loss;
import io.colossal4j.ops.Views;
import io.colossal4j.optim.LrSchedule;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.step.Batch;
import io.colossal4j.train.Engine;
import io.colossal4j.step.MicroBatchSchedule;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Pipeline runs reproduce a single process: K = 3 SGD-with-momentum steps, m = 4 micro-batches (6 in the f64 case), the last step's
 * batch of 6 samples splitting unevenly (1, 1, 2, 2), for each schedule, on the small ViT, a narrow ResNet
 * (BatchNorm included) and the small GPT, at pp = 2 and pp = 4.
 *
 * <p>Tolerance: both sides run the same kernels (1 thread) on the same micro-batch shapes in the same order, so
 * they agree bit for bit up to the fast backend's known run-to-run last-bit nondeterminism; after three momentum
 * steps such differences stay below 1e-5 relative (+1e-6 absolute for values near zero). A wrong micro-batch
 * weight, a gradient sent to the wrong micro-batch or chunk, or a lost unit changes values at 1e-2 or more.
 */

class PipelineEquivalenceTest {
  static final double RTOL = 1e-5, ATOL = 1e-6;
  static final int[] BATCHES = {8, 8, 6};

  static PipelineTwin.Setup vit() {
    return new PipelineTwin.Setup(b -> Zoo.build(ModuleContext.of(b, 3), ModelSpec.of("vit_tiny_28", 10)),
        b -> images(b, 1, 28, 10), Loss::crossEntropy, 4);
  }

  static PipelineTwin.Setup resnet() {
    var narrow = new ResNetConfig(false, List.of(1, 1, 1, 1), List.of(4, 8, 8, 16), 4, 3, 10, true);
    return new PipelineTwin.Setup(b -> new ResNet(ModuleContext.of(b, 4), narrow), b -> images(b, 3, 16, 10), Loss::crossEntropy, 4);
  }

  static PipelineTwin.Setup gpt() {
    return new PipelineTwin.Setup(b -> Zoo.build(ModuleContext.of(b, 5), ModelSpec.of("gpt_small", 0)), b -> tokens(b, 8, 256),
        (out, y) -> Loss.crossEntropy(Views.reshape(out, -1, out.size(-1)), Views.reshape(y, -1)), 4);
  }

  @Test void vitEverySchedulePp2() {
    var single = PipelineTwin.single(vit());
    for (Schedule s : List.of(new Schedule.GPipe(), new Schedule.OneFOneB(), new Schedule.Interleaved(2)))
      assertSame(single, PipelineTwin.pipeline(vit(), 2, s, new SplitPolicy.Balanced()), RTOL, ATOL, "ViT pp=2 " + s);
  }

  @Test void resnetEverySchedulePp2AndPp4() {
    var single = PipelineTwin.single(resnet());
    for (Schedule s : List.of(new Schedule.GPipe(), new Schedule.OneFOneB(), new Schedule.Interleaved(2)))
      assertSame(single, PipelineTwin.pipeline(resnet(), 2, s, new SplitPolicy.Uniform()), RTOL, ATOL, "ResNet pp=2 " + s);
    assertSame(single, PipelineTwin.pipeline(resnet(), 4, new Schedule.Interleaved(2), new SplitPolicy.Uniform()), RTOL, ATOL,
        "ResNet pp=4 interleaved(2)");
  }

  @Test void gptEverySchedulePp2AndPp4() {
    var single = PipelineTwin.single(gpt());
    for (Schedule s : List.of(new Schedule.GPipe(), new Schedule.OneFOneB(), new Schedule.Interleaved(2)))
      assertSame(single, PipelineTwin.pipeline(gpt(), 2, s, new SplitPolicy.Balanced()), RTOL, ATOL, "GPT pp=2 " + s);
    var runs = PipelineTwin.pipeline(gpt(), 4, new Schedule.OneFOneB(), new SplitPolicy.Uniform());
    assertSame(single, runs, RTOL, ATOL, "GPT pp=4 1F1B");
    for (int r = 0; r < 4; r++) assertEquals(4 - r, runs.get(r).peakInFlight(), "1F1B activations held at rank " + r);
  }

  /**
   * A tight check: a small GPT in f64 on the scalar reference kernels (deterministic), pp = 3 with the interleaved
   * schedule over 6 parts and a customized split. Pipeline and single process then differ only in the order of
   * the order of the floating-point sums that accumulate gradients over micro-batches, and both add each
   * parameter's micro-batch gradients in the order 0, 1, ..., 5, so they agree to 1e-12 relative.
   */
  @Test void gptF64ReferenceInterleavedPp3Tight() {
    var tiny = new GptConfig(32, 8, 4, 2, 16, 0.0, true);
    var setup = new PipelineTwin.Setup(b -> new Gpt(new ModuleContext(b, DType.F64, 6), tiny), b -> tokens(b, 6, 32),
        (out, y) -> Loss.crossEntropy(Views.reshape(out, -1, out.size(-1)), Views.reshape(y, -1)), 6, true);
    var split = new SplitPolicy.Customized(List.of("transformer.h.0", "transformer.h.1", "transformer.h.2", "transformer.h.3", "transformer.ln_f"));
    assertSame(PipelineTwin.single(setup), PipelineTwin.pipeline(setup, 3, new Schedule.Interleaved(2), split), 1e-12, 1e-14, "GPT f64 pp=3 interleaved(2)");
  }

  /** Through the Engine (the trainer's path): pp = 2, 1F1B, the ResNet; per-step losses as the single-process Engine's. */
  @Test void throughTheEngine() {
    var setup = resnet();
    double[] single;
    try (var cpu = CpuBackend.create(1)) {
      var model = setup.model().apply(cpu);
      single = engineLosses(new Engine(model, PipelineTwin.optimizer(model), setup.loss(), new LrSchedule.Constant(PipelineTwin.LR),
          4, 0, new StepHooks() {}, MicroBatchSchedule.SEQUENTIAL), setup.steps().apply(cpu));
    }
    var groups = CpuDistributed.threads(2);
    try {
      var ranks = RankThreads.run(groups, 60, g -> {
        try (var cpu = CpuBackend.create(1)) {
          var model = setup.model().apply(cpu);
          Stage stage = Stage.of(model, SplitPolicy.split(new SplitPolicy.Balanced(), model.units(), 2), 2, g.rank());
          var engine = new Engine(stage, PipelineTwin.optimizer(stage), setup.loss(), new LrSchedule.Constant(PipelineTwin.LR),
              4, 0, new StepHooks() {}, new PipelineRunner(g, stage, new Schedule.OneFOneB()));
          return engineLosses(engine, setup.steps().apply(cpu));
        }
      });
      // losses are about 2.3: 1e-4 absolute is the 1e-5 relative tolerance above, with room for the Engine's loss·n/n
      for (double[] r : ranks) assertArrayEquals(single, r, 1e-4, "Engine losses");
    } finally {
      groups.forEach(ProcessGroup::close);
    }
  }

  private static double[] engineLosses(Engine engine, List<Batch> steps) {
    double[] out = new double[steps.size()];
    for (int i = 0; i < out.length; i++) out[i] = engine.trainStep(steps.get(i)).loss();
    return out;
  }

  /** Random images in [-1, 1] and labels, one batch per entry of {@link #BATCHES}. */
  static List<Batch> images(Backend b, int c, int s, int classes) {
    Random rnd = new Random(11);
    List<Batch> out = new ArrayList<>();
    for (int n : BATCHES) {
      double[] x = rnd.doubles((long) n * c * s * s, -1, 1).toArray();
      long[] y = rnd.longs(n, 0, classes).toArray();
      out.add(new Batch(Tensor.of(x, Shape.of(n, c, s, s), DType.F32, b), Tensor.of(y, Shape.of(n), DType.I64, b)));
    }
    return out;
  }

  static List<Batch> tokens(Backend b, int t, int vocab) {
    Random rnd = new Random(12);
    List<Batch> out = new ArrayList<>();
    for (int n : BATCHES) {
      long[] x = rnd.longs((long) n * t, 0, vocab).toArray(), y = rnd.longs((long) n * t, 0, vocab).toArray();
      out.add(new Batch(Tensor.of(x, Shape.of(n, t), DType.I64, b), Tensor.of(y, Shape.of(n, t), DType.I64, b)));
    }
    return out;
  }
}
