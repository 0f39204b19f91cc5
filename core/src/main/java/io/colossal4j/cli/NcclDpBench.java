package io.colossal4j.cli;

import io.colossal4j.backend.cuda.CudaBackend;
import io.colossal4j.backend.cuda.CudaOptions;
import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.models.ModelSpec;
import io.colossal4j.models.Zoo;
import io.colossal4j.models.gpt.GptConfig;
import io.colossal4j.nn.ModuleContext;
import io.colossal4j.nn.UnitModel;
import io.colossal4j.ops.Loss;
import io.colossal4j.ops.Views;
import io.colossal4j.optim.Adam;
import io.colossal4j.optim.LrSchedule;
import io.colossal4j.optim.ParamGroup;
import io.colossal4j.parallel.data.DataParallel;
import io.colossal4j.step.Batch;
import io.colossal4j.step.MicroBatchSchedule;
import io.colossal4j.step.StepHooks;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Device;
import io.colossal4j.tensor.MemoryCategory;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.train.Engine;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * {@code colossal bench nccl-dp [--kernel-cache DIR]}: data-parallel scaling of a training step (forward,
 * cross-entropy, backward, AdamW, through the {@link Engine} as the trainer runs it) of a
 * vit_huge_patch14_clip_336-shaped ViT (32 images of 336² per GPU) and a GPT-2-medium-shaped model (8 × 1024 tokens
 * per GPU), parameters in bf16, on one GPU, on two GPUs with {@link DataParallel} over the NCCL group (25 MiB
 * buckets all-reduced during backward) and on two GPUs without gradient sync (the same step, each GPU alone).
 * Per case: 5 warm-up steps, then the mean of 5 (on one GPU also with each step's figures read after the next step is queued); {@code --skip-unsynced} leaves out the rows without gradient sync. Prints CSV {@code model,gpus,sync,step_ms,per_gpu_throughput};
 * {@code scripts/bench_ddp_torch.py} measures PyTorch DDP on the same models and batches.
 */
final class NcclDpBench implements Main.Command {
  /** Warm-up steps: the first steps run partly interpreted (the JIT compiles the step's Java paths) and autotune GEMMs. */
  private static final int WARMUP = 5, STEPS = 5;

  @Override public String summary() { return "data-parallel scaling of ViT-H/14@336 and GPT-2-medium steps on 1 and 2 GPUs over NCCL (CSV)"; }

  @Override public int run(String[] args) throws Exception {
    CudaOptions opts = CudaOptions.defaults(io.colossal4j.launch.HostEnvironment.current());
    boolean unsynced = true, priority = false;
    for (int i = 0; i < args.length; i++) {
      if (args[i].equals("--kernel-cache") && i + 1 < args.length) opts = opts.withKernelCacheDir(Path.of(args[++i]));
      else if (args[i].equals("--skip-unsynced")) unsynced = false;
      else if (args[i].equals("--comm-stream") && i + 1 < args.length && List.of("high", "normal").contains(args[i + 1])) priority = args[++i].equals("high");
      else {
        System.err.println("colossal bench nccl-dp: unknown option '" + args[i] + "' (valid: --kernel-cache DIR, --skip-unsynced, --comm-stream high|normal)");
        return 2;
      }
    }
    if (CudaBackend.deviceCount(opts) < 2) {
      // one GPU: the single-GPU rows only, each step read back at once and with its figures read one step later
      System.err.println("colossal bench nccl-dp: one GPU on this host, so the 1-GPU rows only (2 GPUs for the data-parallel rows)");
      System.out.println("model,gpus,sync,step_ms,per_gpu_throughput");
      try (CudaBackend gpu = CudaBackend.open(Device.cuda(0), opts)) {
        for (String model : List.of("vit_huge_clip_336", "gpt_medium")) {
          report(model, 1, "-", List.of(time(gpu, model, null, false)));
          report(model, 1, "- (figures read a step late)", List.of(time(gpu, model, null, true)));
        }
      }
      return 0;
    }
    List<CudaBackend> gpus = new ArrayList<>();
    try {
      for (int g = 0; g < 2; g++) gpus.add(CudaBackend.open(Device.cuda(g), opts));
      System.out.println("model,gpus,sync,step_ms,per_gpu_throughput");
      List<ProcessGroup> world = NcclBench.join(gpus, priority);
      System.err.println("communicator streams: " + (priority ? "highest priority" : "default priority") + ", NCCL_MAX_CTAS="
          + io.colossal4j.launch.HostEnvironment.current().getOrDefault("NCCL_MAX_CTAS", "(unset)"));
      try {
        for (String model : List.of("vit_huge_clip_336", "gpt_medium")) {
          report(model, 1, "-", List.of(time(gpus.getFirst(), model, null, false)));
          report(model, 1, "- (figures read a step late)", List.of(time(gpus.getFirst(), model, null, true)));
          report(model, 2, "nccl", both(world, model, true));
          if (unsynced) report(model, 2, "none", both(world, model, false));
        }
      } finally {
        world.reversed().forEach(ProcessGroup::close);
      }
    } finally {
      for (CudaBackend b : gpus) b.close();
    }
    return 0;
  }

  /** Per-GPU units (images or tokens) per step, for throughput. */
  private static long units(String model) { return model.startsWith("gpt") ? 8L * GptConfig.medium().blockSize() : 32; }

  private static void report(String model, int gpus, String sync, List<Double> ms) {
    double worst = ms.stream().mapToDouble(Double::doubleValue).max().orElseThrow();
    System.out.printf("%s,%d,%s,%.1f,%.1f%n", model, gpus, sync, worst, units(model) / (worst / 1e3));
    System.out.flush();
  }

  private static List<Double> both(List<ProcessGroup> world, String model, boolean sync) {
    try (ExecutorService threads = Executors.newFixedThreadPool(world.size())) {
      List<CompletableFuture<Double>> runs = new ArrayList<>();
      for (ProcessGroup g : world)
        runs.add(CompletableFuture.supplyAsync(() -> time(((io.colossal4j.distributed.nccl.NcclProcessGroup) g).backend(), model, sync ? g : null, false), threads));
      return runs.stream().map(CompletableFuture::join).toList();
    }
  }

  /**
   * Mean step milliseconds of {@code model} on {@code gpu}, with gradients averaged over {@code dp} when given;
   * {@code late}: each step's figures are read after the next step is queued (as a trainer that logs a step late).
   */
  private static double time(CudaBackend gpu, String name, ProcessGroup dp, boolean late) {
    boolean gpt = name.startsWith("gpt");
    UnitModel model = Zoo.build(new ModuleContext(gpu, DType.BF16, 0), ModelSpec.of(name, gpt ? 0 : 1000));
    Random r = new Random(3);
    Batch batch;
    if (gpt) {
      int t = GptConfig.medium().blockSize(), vocab = GptConfig.medium().vocabSize();
      batch = new Batch(ids(gpu, r, Shape.of(8, t), vocab), ids(gpu, r, Shape.of(8, t), vocab));   // next-token targets per position
    } else {
      Tensor images = Tensor.empty(Shape.of(32, 3, 336, 336), DType.BF16, gpu, MemoryCategory.ACTIVATION);
      gpu.kernels().uniform(images, 7, 0);
      batch = new Batch(images, ids(gpu, r, Shape.of(32), 1000));
    }
    StepHooks hooks = dp == null ? new StepHooks() {} : new DataParallel(model, dp, 25L << 20);
    Engine engine = new Engine(model, Adam.adamW(ParamGroup.single(model.namedParameters(), 0.1)), (o, y) -> Loss.crossEntropy(
        o.rank() > 2 ? Views.reshape(o, -1, o.size(-1)) : o, y.rank() > 1 ? Views.reshape(y, -1) : y), new LrSchedule.Constant(1e-4), 1, 0, hooks, MicroBatchSchedule.SEQUENTIAL);
    for (int i = 0; i < WARMUP; i++) engine.trainStep(batch);
    if (dp != null) dp.barrier();
    gpu.synchronize();
    long waits0 = gpu.hostWaits();
    gpu.traceHostWaits(true);
    long t0 = System.nanoTime();
    Engine.PendingStep previous = null;
    for (int i = 0; i < STEPS; i++) {
      if (!late) {
        engine.trainStep(batch);
        continue;
      }
      Engine.PendingStep step = engine.trainStepAsync(batch);
      if (previous != null) previous.result();
      previous = step;
    }
    if (previous != null) previous.result();
    gpu.synchronize();
    double ms = (System.nanoTime() - t0) / 1e6 / STEPS;
    System.err.printf("%s on %s%s: %.1f ms a step, the host waited for the GPU %d times in %d steps%n", name, gpu.describe().split(",")[0],
        late ? " (figures read a step late)" : "", ms, gpu.hostWaits() - waits0, STEPS);
    for (String site : gpu.hostWaitSites()) System.err.println("  waited: " + site);
    gpu.traceHostWaits(false);
    for (Tensor p : model.parameters()) p.storage().release();
    gpu.emptyCache();
    return ms;
  }

  private static Tensor ids(CudaBackend gpu, Random r, Shape s, int bound) {
    long[] v = new long[Math.toIntExact(s.numel())];
    for (int i = 0; i < v.length; i++) v[i] = r.nextInt(bound);
    return Tensor.of(v, s, DType.I64, gpu);
  }
}
