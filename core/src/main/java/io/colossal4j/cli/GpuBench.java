package io.colossal4j.cli;

import io.colossal4j.autograd.Autocast;
import io.colossal4j.autograd.Autograd;
import io.colossal4j.backend.MemoryStats;
import io.colossal4j.backend.MemoryTrace;
import io.colossal4j.backend.cuda.CudaBackend;
import io.colossal4j.backend.cuda.CudaBench;
import io.colossal4j.backend.cuda.CudaOptions;
import io.colossal4j.models.ModelSpec;
import io.colossal4j.models.Zoo;
import io.colossal4j.models.gpt.GptConfig;
import io.colossal4j.models.vit.ViTConfig;
import io.colossal4j.nn.ModuleContext;
import io.colossal4j.nn.UnitModel;
import io.colossal4j.ops.Loss;
import io.colossal4j.ops.Views;
import io.colossal4j.optim.Adam;
import io.colossal4j.optim.Optimizer;
import io.colossal4j.optim.ParamGroup;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Device;
import io.colossal4j.tensor.MemoryCategory;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Random;

/**
 * {@code colossal bench gpu [--kernel-cache DIR] [--skip-kernels] [--cudnn-plans autotune|explore|heuristic] [--profile] [--trace-memory] [--gemm-tuning] [--no-gelu-epilogue] [--no-side-stream] [--only vit|gpt|amp|attention|membound]}: the GPU benchmark. Kernel cases
 * ({@link CudaBench}: GEMM, layer norm, attention) and a full training step (forward, cross-entropy, backward,
 * AdamW) of a vit_huge_patch14_clip_336-shaped ViT (batch 32 at 336) and a GPT-2-medium-shaped model (batch
 * 8 x 1024 tokens), parameters in bf16, on cuda:0; and the GPT with f32 master weights under bf16 autocast. Prints one CSV table on stdout
 * ({@link CudaBench#CSV_HEADER}); {@code scripts/bench_gpu_torch.py --java <that csv>} measures PyTorch on the
 * same cases and prints both side by side.
 *
 * <p>Training step: 2 warm-up steps, then the mean of 5 steps between two device synchronisations. Model
 * FLOPs per step = 6·P·tokens + 12·L·T·d·tokens (parameters, and attention at full T; PaLM's convention);
 * MFU divides by the H200's dense bf16 peak, {@link #PEAK_BF16_FLOPS}. Peak memory (the CSV's): the most bytes requested at
 * once during the timed steps, which is what torch.cuda.max_memory_allocated counts (the allocator's size-class
 * slack, PyTorch's "reserved", is printed beside it on stderr); each step ends by releasing the gradients
 * (PyTorch's side: {@code zero_grad(set_to_none=True)}). {@code --trace-memory}: one more step per case with a
 * {@link MemoryTrace}, whose live set at the peak is printed by unit, op and saving node.
 */
final class GpuBench implements Main.Command {
  /** H200 SXM dense bf16 tensor-core peak, from NVIDIA's datasheet (989.4 TFLOP/s). */
  static final double PEAK_BF16_FLOPS = 989.4e12;
  private static final int WARMUP = 2, STEPS = 5;

  @Override public String summary() { return "kernels and training steps on cuda:0 (CSV; scripts/bench_gpu_torch.py adds PyTorch)"; }

  @Override public int run(String[] args) {
    CudaOptions opts = CudaOptions.defaults(io.colossal4j.launch.HostEnvironment.current());
    boolean kernels = true, geluEpilogue = true, sideStream = true;
    java.util.Set<Diagnostic> diag = java.util.EnumSet.noneOf(Diagnostic.class);
    String only = null;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--kernel-cache" -> opts = opts.withKernelCacheDir(Path.of(args[++i]));
        case "--skip-kernels" -> kernels = false;
        case "--cudnn-plans" -> {
          String v = i + 1 < args.length ? args[++i] : "";
          switch (v) {
            case "autotune" -> opts = opts.withCudnnPlans(CudaOptions.CudnnPlans.AUTOTUNE);
            case "heuristic" -> opts = opts.withCudnnPlans(CudaOptions.CudnnPlans.HEURISTIC);
            case "explore" -> opts = opts.withCudnnPlans(CudaOptions.CudnnPlans.EXPLORE);
            default -> {
              System.err.println("colossal bench gpu: --cudnn-plans '" + v + "' is not a choice (valid: autotune (time cuDNN's candidate plans), explore (and knob variants), heuristic (its first))");
              return 2;
            }
          }
        }
        case "--profile" -> diag.add(Diagnostic.PROFILE);
        case "--gemm-tuning" -> diag.add(Diagnostic.GEMM_TUNING);
        case "--no-gelu-epilogue" -> geluEpilogue = false;
        case "--no-side-stream" -> sideStream = false;
        case "--trace-memory" -> diag.add(Diagnostic.TRACE_MEMORY);
        case "--only" -> {
          only = i + 1 < args.length ? args[++i] : "";
          if (!java.util.Set.of("vit", "gpt", "amp", "attention", "membound").contains(only)) {
            System.err.println("colossal bench gpu: --only '" + only + "' is not a case (valid: vit, gpt, amp (training steps), attention (the attention kernels), membound (the ViT-H block's elementwise and layer-norm passes))");
            return 2;
          }
        }
        default -> {
          System.err.println("colossal bench gpu: unknown option '" + args[i] + "' (valid: --kernel-cache DIR, --skip-kernels, --cudnn-plans autotune|explore|heuristic, --profile, --trace-memory, --gemm-tuning, --no-gelu-epilogue, --no-side-stream, --only vit|gpt|amp|attention|membound)");
          return 2;
        }
      }
    }
    PrintStream out = System.out;
    try (CudaBackend gpu = CudaBackend.open(Device.cuda(0), opts)) {
      System.err.println("colossal4j GPU bench on " + gpu.describe());
      if (diag.contains(Diagnostic.GEMM_TUNING)) gpu.logGemmTuning(System.err);
      gpu.useGeluEpilogue(geluEpilogue);
      gpu.useSideStream(sideStream);
      out.println(CudaBench.CSV_HEADER);
      if ("attention".equals(only)) {
        CudaBench.attentionKernels(gpu, out);
        return 0;
      }
      if ("membound".equals(only)) {
        CudaBench.memoryBoundKernels(gpu, out);
        return 0;
      }
      if (kernels) CudaBench.kernels(gpu, out);
      if (only == null || only.equals("vit")) vit(gpu, out, diag);
      if (only == null || only.equals("gpt")) gpt(gpu, out, DType.BF16, "train_gpt_medium", diag);
      if (only == null || only.equals("amp")) {
        try {
          gpt(gpu, out, DType.F32, "train_gpt_medium_amp", diag);  // f32 master weights, autocast to bf16
        } catch (RuntimeException e) {
          System.err.println("train_gpt_medium_amp failed: " + e.getMessage());
        }
      }
    }
    return 0;
  }

  private static void vit(CudaBackend gpu, PrintStream out, java.util.Set<Diagnostic> diag) {
    int batch = 32;
    ViTConfig c = Zoo.vitConfig(ViTConfig.hugeClip336(1000), ModelSpec.of("vit_huge_clip_336", 1000));
    UnitModel model = Zoo.build(new ModuleContext(gpu, DType.BF16, 0), ModelSpec.of("vit_huge_clip_336", 1000));
    Tensor images = Tensor.empty(Shape.of(batch, 3, c.imageSize(), c.imageSize()), DType.BF16, gpu, MemoryCategory.ACTIVATION);
    gpu.kernels().uniform(images, 7, 0);
    Tensor labels = randomIds(gpu, new Random(1), Shape.of(batch), 1000);
    int tokens = (c.imageSize() / c.patchSize()) * (c.imageSize() / c.patchSize()) + 1;
    double flops = stepFlops(model.parameterCount(), (long) batch * tokens, c.depth(), tokens, c.embedDim());
    step(gpu, out, "train_vit_huge", batch + "x3x" + c.imageSize() + "x" + c.imageSize(), model, images, labels, flops, batch, "img/s", diag);
  }

  /** GPT-2 medium with parameters in {@code dtype}; f32 parameters train under bf16 autocast (mixed precision). */
  private static void gpt(CudaBackend gpu, PrintStream out, DType dtype, String name, java.util.Set<Diagnostic> diag) {
    int batch = 8;
    GptConfig c = GptConfig.medium();
    UnitModel model = Zoo.build(new ModuleContext(gpu, dtype, 0), ModelSpec.of("gpt_medium", 0));
    Random r = new Random(2);
    Tensor ids = randomIds(gpu, r, Shape.of(batch, c.blockSize()), c.vocabSize());
    Tensor next = randomIds(gpu, r, Shape.of(batch * c.blockSize()), c.vocabSize());
    long tokens = (long) batch * c.blockSize();
    double flops = stepFlops(model.parameterCount(), tokens, c.nLayer(), c.blockSize(), c.nEmbd());
    step(gpu, out, name, batch + "x" + c.blockSize(), model, ids, next, flops, tokens, "tok/s", diag);
  }

  /**
   * Where one more step's time goes: forward with the loss, backward, optimizer, each ended by a device
   * synchronisation; and how long the host takes to queue a whole step (when that is close to the step's
   * time, the GPU waits for the host: launch overhead, not kernels, bounds the step).
   */
  private static void phases(CudaBackend gpu, String name, java.util.function.Supplier<Tensor> lossOf, Optimizer opt, Runnable step) {
    long t0, t1, t2, t3;
    try (var scope = gpu.openStep()) {
      t0 = System.nanoTime();
      Tensor loss = lossOf.get();
      gpu.synchronize();
      t1 = System.nanoTime();
      Autograd.backward(loss);
      gpu.synchronize();
      t2 = System.nanoTime();
      opt.step(1e-4);
      opt.releaseGrads();
      gpu.synchronize();
      t3 = System.nanoTime();
    }
    long q0 = System.nanoTime();
    step.run();
    long q1 = System.nanoTime();
    gpu.synchronize();
    long q2 = System.nanoTime();
    System.err.printf("%s phases: forward+loss %.1f ms, backward %.1f ms, optimizer %.1f ms; the host queued a step in %.1f ms, done after %.1f ms%n",
        name, (t1 - t0) / 1e6, (t2 - t1) / 1e6, (t3 - t2) / 1e6, (q1 - q0) / 1e6, (q2 - q0) / 1e6);
  }

  /**
   * One step with a {@link MemoryTrace}: what is live at the step's peak (requested bytes, parameters and
   * optimizer state included), by category and by unit, op and the autograd nodes that saved it. Slow (the trace
   * scans the live storages at every allocation): run after the timed steps.
   */
  private static void traceMemory(CudaBackend gpu, String name, UnitModel model, Optimizer opt, java.util.function.Supplier<Tensor> lossOf) {
    java.util.List<io.colossal4j.tensor.Storage> resident = new java.util.ArrayList<>();
    for (Tensor p : model.parameters()) resident.add(p.storage());
    for (Tensor s : opt.stateDict().values()) resident.add(s.storage());
    MemoryTrace trace = new MemoryTrace(resident);
    try (var scope = gpu.openStep()) {
      gpu.activeStep().attach(trace);
      Tensor loss = lossOf.get();
      Autograd.backward(loss);
      opt.step(1e-4);
      opt.releaseGrads();
    }
    System.err.println(name + " memory trace of one step:\n" + trace.describe(60));
  }

  static double stepFlops(long params, long tokens, int layers, int seq, int width) {
    return 6.0 * params * tokens + 12.0 * layers * seq * width * tokens;
  }

  private static Tensor randomIds(CudaBackend gpu, Random r, Shape s, int bound) {
    long[] v = new long[Math.toIntExact(s.numel())];
    for (int i = 0; i < v.length; i++) v[i] = r.nextInt(bound);
    return Tensor.of(v, s, DType.I64, gpu);
  }

  /** What a training case does after its timed steps, on stderr: one profiled step, one memory-traced step. */
  enum Diagnostic { PROFILE, TRACE_MEMORY, GEMM_TUNING }

  /** Times forward + cross-entropy + backward + AdamW; {@code units} samples (or tokens) per step; then the diagnostics asked for. */
  private static void step(CudaBackend gpu, PrintStream out, String name, String shape, UnitModel model, Tensor input, Tensor targets,
                           double flops, long units, String unit, java.util.Set<Diagnostic> diag) {
    model.train(true);
    Optimizer opt = Adam.adamW(ParamGroup.single(model.namedParameters(), 0.1));
    boolean amp = model.parameters().getFirst().dtype() == DType.F32;
    java.util.function.Supplier<Tensor> lossOf = () -> {
      Tensor logits = amp ? Autocast.call(DType.BF16, () -> model.forward(input)) : model.forward(input);
      if (logits.rank() > 2) logits = Views.reshape(logits, -1, logits.size(-1));
      return Loss.crossEntropy(logits, targets);
    };
    Runnable step = () -> {
      try (var scope = gpu.openStep()) {   // the step's activations and temporaries go back deterministically
        Autograd.backward(lossOf.get());
        opt.step(1e-4);
        opt.releaseGrads();   // PyTorch's zero_grad(set_to_none=True): no gradient memory held through the next forward
      }
    };
    for (int i = 0; i < WARMUP; i++) step.run();
    gpu.synchronize();
    gpu.resetPeakMemory();
    long waits0 = gpu.hostWaits(), mem0 = gpu.deviceMemoryCalls();
    long t0 = System.nanoTime();
    for (int i = 0; i < STEPS; i++) step.run();
    long waits = gpu.hostWaits() - waits0, memCalls = gpu.deviceMemoryCalls() - mem0;
    gpu.synchronize();
    double ms = (System.nanoTime() - t0) / 1e6 / STEPS;
    // requested bytes, as torch.cuda.max_memory_allocated counts them (our size classes' slack is PyTorch's "reserved")
    double peakGib = gpu.peakMemoryRequested() / (double) (1L << 30);
    double perSecond = units / (ms / 1e3);
    out.printf("colossal4j,%s,%s,%.3f,%.1f,%.1f,%.2f%n", name, shape, ms, flops / ms / 1e9, perSecond, peakGib);
    out.flush();
    System.err.printf("%s %s: %.1f ms/step, %,.1f %s, MFU %.1f%%, peak %s (%s requested), garbage collections asked by the allocator so far %d%n", name, shape, ms, perSecond, unit,
        100 * flops / (ms / 1e3) / PEAK_BF16_FLOPS, MemoryStats.human(gpu.peakMemoryInUse()), MemoryStats.human(gpu.peakMemoryRequested()), gpu.collections());
    System.err.printf("%s: in %d steps the host waited for the GPU %d times and called cuMemAlloc/cuMemFree %d times%n", name, STEPS, waits, memCalls);
    System.err.print(name + " memory by category:\n" + gpu.memoryStats().describe());
    phases(gpu, name, lossOf, opt, step);
    if (diag.contains(Diagnostic.TRACE_MEMORY)) traceMemory(gpu, name, model, opt, lossOf);
    if (diag.contains(Diagnostic.PROFILE)) {
      gpu.synchronize();
      gpu.startProfile();
      step.run();
      step.run();   // two steps back to back: the second starts while the first runs, as in training
      System.err.println(name + " profile of two steps back to back (figures are sums over both):\n" + gpu.stopProfile(40));
    }
    for (Tensor p : model.parameters()) p.storage().release();
    gpu.emptyCache();
  }
}
