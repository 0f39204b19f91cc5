package io.colossal4j.cli;

import io.colossal4j.backend.Backend;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.backend.cuda.CudaBackend;
import io.colossal4j.backend.cuda.CudaOptions;
import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.distributed.cpu.CpuDistributed;
import io.colossal4j.distributed.nccl.NcclDistributed;
import io.colossal4j.launch.EnvRendezvous;
import io.colossal4j.launch.HostEnvironment;
import io.colossal4j.parallel.pipeline.Schedule;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Device;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * {@code colossal bench nccl-pp}: pipeline parallelism over 2 ranks (pp = 2) on a vit_huge_patch14_clip_336-shaped
 * ViT and a GPT-2-medium-shaped model, parameters in bf16, AdamW, under GPipe, 1F1B and interleaved 1F1B (v = 2):
 * step time, samples/s, each stage's measured bubble against theory, and each stage's peak memory. The ranks are
 * threads of one JVM, one per GPU, joined by an NCCL group (as {@code bench nccl-dp}), or, under the launcher
 * ({@code colossal run --nproc-per-node 2 --command bench nccl-pp ...}), one process per GPU; {@code --device cpu}
 * runs the same code on the CPU process group (for small models: the smoke test). {@code scripts/bench_pp_torch.py}
 * measures torch.distributed.pipelining on the same models, splits and micro-batches and prints the same columns.
 *
 * <p>A second bubble, {@code inpipe_bubble}, is measured inside the pipeline: 1 - (the stage's actions' summed
 * intervals in the measured steps, from CUDA events on its compute stream) / sched_ms. The Python script leaves these
 * two columns empty.
 *
 * <p>Definitions (identical in the Python script): a step is the whole training step (the schedule's forwards and
 * backwards, then the optimizer); {@code sched_ms} is the schedule's part (up to the optimizer), the slowest rank's.
 * A stage's busy time is the time the same stage takes to run the same m forwards and backwards alone, without
 * communication (measured right after, on the same device); its bubble is {@code 1 - busy / sched_ms}. Theory is
 * the idle fraction of the ideal schedule, {@code (p-1)/(v·m + p-1)} (v = 1 for GPipe and 1F1B; for interleaved
 * this is (p-1)/(v·m) bubble over compute, as an idle fraction). Splits cut the blocks so that stages hold equal
 * work, counting an LM head as vocab/(12·width) blocks; the CSV comments name them.
 */
final class NcclPpBench implements Main.Command {
  @Override public String summary() { return "pipeline pp=2 on GPUs (ViT-H/14@336, GPT-2 medium): step, samples/s, bubble, memory per schedule (CSV)"; }

  /** What to run; {@code images}/{@code sequences} are the global batch per step, cut into {@code microBatches}. */
  record Options(boolean cuda, List<String> models, List<String> schedules, int microBatches, int images, int sequences, int warmup,
                 int steps, int threads, Path kernelCache) {
    static final String USAGE = "colossal bench nccl-pp [--device cuda|cpu] [--models vit_huge_clip_336,gpt_medium] "
        + "[--schedules gpipe,1f1b,interleaved] [--micro-batches 8] [--images 64] [--sequences 16] [--warmup 5] [--steps 5] "
        + "[--threads N (cpu)] [--kernel-cache DIR]";

    static Options parse(String[] args) {
      boolean cuda = true;
      List<String> models = List.of("vit_huge_clip_336", "gpt_medium"), schedules = List.of("gpipe", "1f1b", "interleaved");
      int m = 8, images = 64, sequences = 16, warmup = 5, steps = 5, threads = 1;
      Path cache = null;
      for (int i = 0; i < args.length; i += 2) {
        if (i + 1 >= args.length) throw new IllegalArgumentException(args[i] + " needs a value; usage: " + USAGE);
        String v = args[i + 1];
        switch (args[i]) {
          case "--device" -> cuda = switch (v) {
            case "cuda" -> true;
            case "cpu" -> false;
            default -> throw new IllegalArgumentException("--device " + v + ": valid are cuda, cpu");
          };
          case "--models" -> models = List.of(v.split(","));
          case "--schedules" -> schedules = List.of(v.split(","));
          case "--micro-batches" -> m = Integer.parseInt(v);
          case "--images" -> images = Integer.parseInt(v);
          case "--sequences" -> sequences = Integer.parseInt(v);
          case "--warmup" -> warmup = Integer.parseInt(v);
          case "--steps" -> steps = Integer.parseInt(v);
          case "--threads" -> threads = Integer.parseInt(v);
          case "--kernel-cache" -> cache = Path.of(v);
          default -> throw new IllegalArgumentException("unknown option " + args[i] + "; usage: " + USAGE);
        }
      }
      for (String s : schedules) schedule(s);
      if (m < 2 || m % 2 != 0) throw new IllegalArgumentException("--micro-batches " + m + ": needs an even number >= 2 (interleaved runs m in groups of p = 2)");
      if (images % m != 0 || sequences % m != 0)
        throw new IllegalArgumentException("--images " + images + " and --sequences " + sequences + " must divide into " + m + " micro-batches");
      if (steps < 1 || warmup < 0) throw new IllegalArgumentException("--steps must be >= 1 and --warmup >= 0, got " + steps + " and " + warmup);
      return new Options(cuda, models, schedules, m, images, sequences, warmup, steps, threads, cache);
    }
  }

  static Schedule schedule(String name) {
    return switch (name) {
      case "gpipe" -> new Schedule.GPipe();
      case "1f1b" -> new Schedule.OneFOneB();
      case "interleaved" -> new Schedule.Interleaved(2);
      default -> throw new IllegalArgumentException("schedule " + name + ": valid are gpipe, 1f1b, interleaved");
    };
  }

  /** One measured case: the slowest rank's step and schedule times, each stage's busy time and peak memory. */
  record Row(String model, String schedule, int v, int m, int microBatch, double stepMs, double schedMs, double[] busyMs,
             double[] busyInPipelineMs, long[] peakBytes, int samples, String split) {
    double theory() { return 1.0 / (v * m + 1); }   // (p-1)/(v·m + p-1) at p = 2

    double bubble(int stage) { return 1 - busyMs[stage] / schedMs; }

    double bubbleInPipeline(int stage) { return 1 - busyInPipelineMs[stage] / schedMs; }

    String csv() {
      return "colossal4j,%s,%s,2,%d,%d,%d,%.1f,%.1f,%.1f,%.1f,%.1f,%.3f,%.3f,%.3f,%.3f,%.1f,%.1f,%.3f,%.3f".formatted(model, schedule, v, m,
          microBatch, stepMs, samples / (stepMs / 1e3), schedMs, busyMs[0], busyMs[1], bubble(0), bubble(1), (bubble(0) + bubble(1)) / 2,
          theory(), peakBytes[0] / (double) (1L << 20), peakBytes[1] / (double) (1L << 20), bubbleInPipeline(0), bubbleInPipeline(1));
    }
  }

  static final String HEADER = "impl,model,schedule,p,v,m,micro_batch,step_ms,samples_per_s,sched_ms,busy_ms_s0,busy_ms_s1,"
      + "bubble_s0,bubble_s1,bubble_mean,theory,peak_mib_s0,peak_mib_s1,inpipe_bubble_s0,inpipe_bubble_s1";

  @Override public int run(String[] args) throws Exception { return run(args, System.out); }

  int run(String[] args, PrintStream out) throws Exception {
    Options o;
    try {
      o = Options.parse(args);
    } catch (IllegalArgumentException e) {
      System.err.println("colossal bench nccl-pp: " + e.getMessage());
      return 2;
    }
    var env = HostEnvironment.current();
    return EnvRendezvous.spec(env).isPresent() ? asRank(o, env, out) : inThreads(o, out);
  }

  /** Both ranks in this JVM, a thread each (the GPUs of this host, or two CPU backends). */
  private static int inThreads(Options o, PrintStream out) {
    List<Backend> backends = new ArrayList<>();
    List<ProcessGroup> world = List.of();
    try {
      if (o.cuda()) {
        CudaOptions opts = cudaOptions(o);
        if (CudaBackend.deviceCount(opts) < 2) {
          System.err.println("colossal bench nccl-pp: needs 2 GPUs on this host (or --device cpu)");
          return 2;
        }
        List<CudaBackend> gpus = new ArrayList<>();
        for (int g = 0; g < 2; g++) gpus.add(CudaBackend.open(Device.cuda(g), opts));
        backends.addAll(gpus);
        world = NcclBench.join(gpus);
      } else {
        for (int r = 0; r < 2; r++) backends.add(CpuBackend.create(o.threads()));
        world = CpuDistributed.threads(2);
      }
      List<ProcessGroup> ranks = world;
      header(out, backends.getFirst().name() + " and " + backends.get(1).name() + " (threads of one process)", o);
      for (String model : o.models())
        for (String s : o.schedules()) {
          List<Row> rows;
          try (ExecutorService threads = Executors.newFixedThreadPool(2)) {
            List<CompletableFuture<Row>> runs = new ArrayList<>();
            for (int r = 0; r < 2; r++) {
              ProcessGroup g = ranks.get(r);
              Backend b = backends.get(r);
              runs.add(CompletableFuture.supplyAsync(() -> measure(g, b, model, s, o), threads));
            }
            rows = runs.stream().map(CompletableFuture::join).toList();
          }
          print(out, rows.getFirst());
        }
      return 0;
    } finally {
      world.reversed().forEach(ProcessGroup::close);
      for (Backend b : backends) b.close();
    }
  }

  /**
   * One rank of {@code colossal run --nproc-per-node 2 --command bench nccl-pp ...}: its GPU is cuda:LOCAL_RANK and
   * its group NCCL over the launcher's rendezvous (a CPU group with {@code --device cpu}); rank 0 prints.
   */
  private static int asRank(Options o, Map<String, String> env, PrintStream out) {
    var spec = EnvRendezvous.spec(env).orElseThrow();
    if (spec.worldSize() != 2) {
      System.err.println("colossal bench nccl-pp: runs on 2 ranks (pp = 2), the launcher started " + spec.worldSize());
      return 2;
    }
    Backend backend = o.cuda() ? CudaBackend.open(Device.cuda(NcclDistributed.device(spec, CudaBackend.deviceCount(cudaOptions(o)))), cudaOptions(o))
        : CpuBackend.create(o.threads());
    try (backend) {
      Optional<ProcessGroup> joined = backend instanceof CudaBackend gpu
          ? EnvRendezvous.join(System.err, sp -> NcclDistributed.connect(sp, gpu, System.err)) : EnvRendezvous.join(System.err);
      ProcessGroup world = joined.orElseThrow();
      try {
        if (world.rank() == 0) header(out, backend.name() + " per process, 2 processes", o);
        for (String model : o.models())
          for (String s : o.schedules()) {
            Row row = measure(world, backend, model, s, o);
            if (world.rank() == 0) print(out, row);
          }
      } finally {
        world.close();
      }
    }
    return 0;
  }

  private static CudaOptions cudaOptions(Options o) {
    CudaOptions opts = CudaOptions.defaults(HostEnvironment.current());
    return o.kernelCache() == null ? opts : opts.withKernelCacheDir(o.kernelCache());
  }

  private static void header(PrintStream out, String devices, Options o) {
    out.println("# pipeline pp=2 on " + devices + "; " + o.warmup() + " warm-up steps, mean of " + o.steps()
        + "; bubble = 1 - busy/sched_ms, busy = the stage alone on the same micro-batches");
    out.println(HEADER);
  }

  private static void print(PrintStream out, Row row) {
    out.println("# " + row.model() + " " + row.schedule() + ": " + row.split());
    out.println(row.csv());
    out.flush();
  }

  /**
   * One case on one rank ({@link PipelineStepTimer}), then the ranks' numbers all-gathered over {@code world} so
   * every rank returns the same row. Collective: both ranks call it with the same case.
   */
  static Row measure(ProcessGroup world, Backend backend, String model, String scheduleName, Options o) {
    Schedule schedule = schedule(scheduleName);
    PipelineStepTimer.Result mine = new PipelineStepTimer(world, backend, model, schedule, o).run();
    double[] numbers = {mine.stepMs(), mine.schedMs(), mine.busyMs(), mine.peakBytes(), mine.busyInPipelineMs()};
    int n = numbers.length;
    Tensor all = Tensor.empty(Shape.of(n * world.size()), DType.F64, backend);
    world.allGather(all, Tensor.of(numbers, Shape.of(n), DType.F64, backend));
    double[] r = all.toDoubleArray();
    double step = Math.max(r[0], r[n]), sched = Math.max(r[1], r[n + 1]);
    return new Row(model, scheduleName, schedule.chunks(), o.microBatches(), mine.samples() / o.microBatches(), step, sched,
        new double[] {r[2], r[n + 2]}, new double[] {r[4], r[n + 4]}, new long[] {(long) r[3], (long) r[n + 3]}, mine.samples(),
        "parts start at " + String.join(", ", mine.splitStarts()) + " (" + mine.split() + ")");
  }
}
