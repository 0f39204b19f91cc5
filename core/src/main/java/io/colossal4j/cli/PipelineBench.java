package io.colossal4j.cli;

import io.colossal4j.step.StepHooks;

import io.colossal4j.autograd.Autograd;
import io.colossal4j.backend.Backend;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.distributed.cpu.CpuDistributed;
import io.colossal4j.nn.Module;
import io.colossal4j.nn.Unit;
import io.colossal4j.nn.UnitModel;
import io.colossal4j.ops.Reduce;
import io.colossal4j.parallel.pipeline.PipelineRunner;
import io.colossal4j.parallel.pipeline.Schedule;
import io.colossal4j.parallel.pipeline.ScheduleSimulation;
import io.colossal4j.parallel.pipeline.Split;
import io.colossal4j.parallel.pipeline.SplitPolicy;
import io.colossal4j.parallel.pipeline.Stage;
import io.colossal4j.parallel.pipeline.Timeline;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.step.Batch;
import io.colossal4j.train.Engine;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.locks.LockSupport;

/**
 * {@code colossal bench pipeline}: the bubble (idle fraction) of each schedule, measured on in-JVM pipeline ranks
 * at m = 4p micro-batches and compared with the closed forms. The ranks run the real {@link PipelineRunner}
 * (schedule, shape-first point-to-point over the CPU process group, loss broadcast) over a model whose units
 * take a fixed time: forward and backward wait {@code --forward-ms}/{@code --backward-ms} per stage (split over its
 * chunks) instead of computing, so p ranks measure the schedule on a machine with fewer than p cores, and every
 * stage has exactly the same work, as the closed forms assume. Activations of {@code --width} floats per sample
 * (8 samples per micro-batch) really travel between the ranks.
 */
final class PipelineBench implements Main.Command {
  /** Steps before measuring: the JIT compiles the loss, accuracy and transport paths within about 25 micro-batches. */
  private static final int WARMUP = 5;

  @Override public String summary() { return "pipeline bubble of GPipe, 1F1B and interleaved 1F1B against theory (in-JVM ranks)"; }

  private record Options(int[] stages, double forwardMs, double backwardMs, int chunks, int steps, int width) {}

  /** One schedule at one pipeline size: the idle fraction of each rank, median over the measured steps. */
  record Row(String schedule, int p, int v, int m, double[] idle, double bubbleOverCompute, double theory, double simulated) {}

  @Override public int run(String[] args) throws Exception {
    Options o = parse(args);
    System.out.printf("""
        Pipeline bubble, in-JVM ranks (threads) on %s, %d cores.
        Each stage's forward takes %.1f ms and backward %.1f ms per micro-batch (fixed-time units, split over the chunks),
        activations of 8 x %d f32 travel between ranks through the CPU process group. Per step, a rank's busy time is
        the sum of its actions' compute intervals (from its input's arrival to handing its output to the transport);
        the step's span runs from the first action's start on any rank to the last action's end on any rank; idle
        = 1 - busy / span. GPipe and 1F1B are compared with (p-1)/(m+p-1) (idle over span); interleaved with
        (p-1)/(v*m), which is bubble time over compute time, i.e. (span - busy) / busy. 'schedule' is the same
        schedule played on an ideal machine (no communication, exact times). Median of %d steps after %d warm-up steps.

        """, System.getProperty("os.arch"), Runtime.getRuntime().availableProcessors(), o.forwardMs(), o.backwardMs(), o.width(), o.steps(), WARMUP);
    List<Row> rows = new ArrayList<>();
    for (int p : o.stages())
      for (Schedule s : List.of(new Schedule.GPipe(), new Schedule.OneFOneB(), new Schedule.Interleaved(o.chunks())))
        rows.add(measure(s, p, o));
    System.out.print(table(rows));
    return 0;
  }

  private static Options parse(String[] args) {
    // 50/100 ms per stage: long against the few milliseconds a woken thread waits for a core on a loaded 2-core machine
    int[] stages = {2, 4};
    double f = 50, b = 100;
    int chunks = 2, steps = 3, width = 8192;
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      if (i + 1 >= args.length) throw new IllegalArgumentException(a + " needs a value");
      String val = args[++i];
      switch (a) {
        case "--stages" -> stages = Arrays.stream(val.split(",")).mapToInt(Integer::parseInt).toArray();
        case "--forward-ms" -> f = Double.parseDouble(val);
        case "--backward-ms" -> b = Double.parseDouble(val);
        case "--chunks" -> chunks = Integer.parseInt(val);
        case "--steps" -> steps = Integer.parseInt(val);
        case "--width" -> width = Integer.parseInt(val);
        default -> throw new IllegalArgumentException("unknown option " + a
            + "; usage: colossal bench pipeline [--stages 2,4] [--forward-ms 50] [--backward-ms 100] [--chunks 2] [--steps 3] [--width 8192]");
      }
    }
    return new Options(stages, f, b, chunks, steps, width);
  }

  private static Row measure(Schedule schedule, int p, Options o) throws Exception {
    int v = schedule.chunks(), m = 4 * p, parts = p * v;
    List<ProcessGroup> groups = CpuDistributed.threads(p);
    ExecutorService pool = Executors.newFixedThreadPool(p);
    try {
      List<Future<List<Timeline>>> futures = new ArrayList<>();
      for (ProcessGroup g : groups) futures.add(pool.submit(() -> runRank(g, schedule, parts, m, o)));
      List<List<Timeline>> perRank = new ArrayList<>();
      for (Future<List<Timeline>> f : futures) perRank.add(f.get());
      double[] idle = new double[p];
      double[] bubble = new double[o.steps()];
      double[][] idleSteps = new double[p][o.steps()];
      for (int s = 0; s < o.steps(); s++) {
        long start = Long.MAX_VALUE, end = Long.MIN_VALUE, busy = 0;
        for (List<Timeline> t : perRank) {
          var spans = t.get(s).spans();
          start = Math.min(start, spans.getFirst().startNanos());
          end = Math.max(end, spans.getLast().endNanos());
        }
        for (int r = 0; r < p; r++) {
          long b = perRank.get(r).get(s).busyNanos();
          busy += b;
          idleSteps[r][s] = 1 - b / (double) (end - start);
        }
        double meanBusy = busy / (double) p;
        bubble[s] = (end - start - meanBusy) / meanBusy;
      }
      for (int r = 0; r < p; r++) idle[r] = median(idleSteps[r]);
      if (io.colossal4j.launch.HostEnvironment.current().containsKey("C4J_BENCH_VERBOSE")) for (int r = 0; r < p; r++) System.err.println(name(schedule) + " p=" + p + " rank " + r + ": " + actionTimes(perRank.get(r)));
      double theory = v == 1 ? (p - 1) / (double) (m + p - 1) : (p - 1) / (double) (v * m);
      var sim = ScheduleSimulation.run(schedule, p, m, o.forwardMs(), o.backwardMs());
      double simulated = v == 1 ? sim.idleFraction(0) : (sim.makespan() - m * (o.forwardMs() + o.backwardMs())) / (m * (o.forwardMs() + o.backwardMs()));
      return new Row(name(schedule), p, v, m, idle, median(bubble), theory, simulated);
    } finally {
      pool.shutdownNow();
      groups.forEach(ProcessGroup::close);
    }
  }

  /** One rank: builds its stage of the fixed-time model, runs the warm-up and {@code steps} measured steps. */
  private static List<Timeline> runRank(ProcessGroup g, Schedule schedule, int parts, int m, Options o) {
    try (CpuBackend cpu = CpuBackend.create(1)) {
      int p = g.size(), v = schedule.chunks();
      long fwd = Math.round(o.forwardMs() * 1e6 / v), bwd = Math.round(o.backwardMs() * 1e6 / v);
      TimedModel model = new TimedModel(cpu, parts, fwd, bwd);
      Split split = SplitPolicy.split(new SplitPolicy.Uniform(), model.units(), parts);
      Stage stage = Stage.of(model, split, p, g.rank());
      PipelineRunner runner = new PipelineRunner(g, stage, schedule);
      Tensor x = Tensor.full(Shape.of(8 * m, o.width()), DType.F32, cpu, 0.5);
      Batch batch = new Batch(x, Tensor.zeros(Shape.of(8 * m), DType.I64, cpu));
      List<Timeline> out = new ArrayList<>();
      for (int step = 0; step < WARMUP + o.steps(); step++) {
        Timeline t = new Timeline();
        runner.record(t);
        g.barrier();
        runner.trainStep(stage, batch.split(m), batch.size(), (y, target) -> Reduce.mean(y), new StepHooks() {});
        stage.zeroGrad();
        if (step >= WARMUP) out.add(t);
      }
      return out;
    }
  }

  /** {@code n} units named layer.0 .. layer.{n-1}, each taking {@code fwd} ns forward and {@code bwd} ns backward. */
  static final class TimedModel extends UnitModel {
    private final List<Unit> units = new ArrayList<>();

    TimedModel(Backend backend, int n, long fwd, long bwd) {
      var layers = new io.colossal4j.nn.Sequential();
      for (int i = 0; i < n; i++) layers.add(Integer.toString(i), new TimedUnit(backend, fwd, bwd));
      units.addAll(child("layer", layers).units("layer."));
    }

    @Override public List<Unit> units() { return units; }
  }

  /** Passes its input through, waiting {@code fwd} ns; its backward passes the gradient through, waiting {@code bwd} ns. */
  static final class TimedUnit extends Module {
    private final Tensor weight;
    private final long fwd, bwd;

    TimedUnit(Backend backend, long fwd, long bwd) {
      this.weight = parameter("weight", Tensor.full(Shape.of(1), DType.F32, backend, 1));
      this.fwd = fwd;
      this.bwd = bwd;
    }

    @Override public Tensor forward(Tensor x) {
      Tensor out = x.detach(); // a new tensor over the same data: autograd needs an output of its own
      waitFor(fwd);
      return Autograd.record("timed", out, g -> {
        waitFor(bwd);
        return new Tensor[] {g, Tensor.zeros(weight.shape(), weight.dtype(), weight.backend())};
      }, x, weight);
    }

    private static void waitFor(long nanos) {
      long until = System.nanoTime() + nanos;
      for (long left = nanos; left > 0; left = until - System.nanoTime()) LockSupport.parkNanos(left);
    }
  }

  /** Mean forward and backward action time of one rank over the measured steps. */
  private static String actionTimes(List<Timeline> steps) {
    double f = 0, b = 0;
    int nf = 0, nb = 0;
    for (Timeline t : steps)
      for (var span : t.spans()) {
        double ms = (span.endNanos() - span.startNanos()) / 1e6;
        if (span.action() instanceof Schedule.Forward) { f += ms; nf++; } else { b += ms; nb++; }
      }
    return "forward %.2f ms, backward %.2f ms".formatted(f / nf, b / nb);
  }

  private static String name(Schedule s) {
    return switch (s) {
      case Schedule.GPipe g -> "gpipe";
      case Schedule.OneFOneB o -> "1f1b";
      case Schedule.Interleaved i -> "interleaved v=" + i.chunks();
    };
  }

  private static double median(double[] xs) {
    double[] s = xs.clone();
    Arrays.sort(s);
    return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  }

  static String table(List<Row> rows) {
    StringBuilder sb = new StringBuilder();
    sb.append("| schedule | p | m | measured idle per stage | measured bubble | theory | schedule (ideal machine) | measured - theory |\n");
    sb.append("|---|---|---|---|---|---|---|---|\n");
    for (Row r : rows) {
      double measured = r.v() == 1 ? Arrays.stream(r.idle()).average().orElse(0) : r.bubbleOverCompute();
      String per = Arrays.stream(r.idle()).mapToObj(x -> "%.1f".formatted(100 * x)).reduce((a, b) -> a + " / " + b).orElse("");
      String theory = r.v() == 1 ? "(p-1)/(m+p-1) = %.1f%%".formatted(100 * r.theory()) : "(p-1)/(v·m) = %.1f%%".formatted(100 * r.theory());
      sb.append("| %s | %d | %d | %s %% | %.1f%% | %s | %.1f%% | %+.1f points |\n".formatted(r.schedule(), r.p(), r.m(), per,
          100 * measured, theory, 100 * r.simulated(), 100 * (measured - r.theory())));
    }
    return sb.toString();
  }
}
