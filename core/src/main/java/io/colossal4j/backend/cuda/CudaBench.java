package io.colossal4j.backend.cuda;

import io.colossal4j.backend.BinaryOp;
import io.colossal4j.backend.Kernels;
import io.colossal4j.backend.ReduceOp;
import io.colossal4j.backend.UnaryOp;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Device;
import io.colossal4j.tensor.MemoryCategory;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * GPU micro-benchmarks of the CUDA backend, the Java half of a side-by-side comparison with PyTorch
 * (scripts/bench_gpu_torch.py runs the same cases): bf16 GEMM (square and the vit_huge / GPT-2-medium
 * linear-layer shapes, y = x W^T), layer norm forward and forward+backward, and attention built from our
 * kernels (batched matmul, softmax, matmul; forward and backward). Each case: 30 warm-up runs (so the JIT
 * has compiled the launch path), then 7 repetitions of 10 back-to-back runs between two CUDA events; the
 * median per run is reported (launch overhead included, as in training). Inputs are uniform random, never zeros.
 *
 * <p>Output: CSV lines {@code impl,case,shape,median_ms,tflops,,} on stdout ({@code tflops} empty where
 * FLOPs are not the measure); {@code colossal bench gpu} adds training steps to the same table.
 */
public final class CudaBench {
  private static final int WARMUP = 30, REPS = 7, ITERS = 10;
  private final CudaBackend gpu;
  private final Kernels k;
  private final PrintStream out;
  private long seed = 1;

  private CudaBench(CudaBackend gpu, PrintStream out) {
    this.gpu = gpu;
    this.k = gpu.kernels();
    this.out = out;
  }

  public static void main(String[] args) {
    Map<String, String> env = io.colossal4j.launch.HostEnvironment.current();
    CudaOptions opts = CudaOptions.defaults(env);
    if (args.length > 0) opts = opts.withKernelCacheDir(Path.of(args[0]));
    try (CudaBackend gpu = CudaBackend.open(Device.cuda(0), opts)) {
      System.err.println("colossal4j GPU bench on " + gpu.describe());
      System.out.println(CSV_HEADER);
      kernels(gpu, System.out);
    }
  }

  /** The CSV header: the kernel cases leave the last two columns (training throughput, peak memory) empty. */
  public static final String CSV_HEADER = "impl,case,shape,median_ms,tflops,throughput,peak_gib";

  /** Runs the kernel cases (GEMM, layer norm, attention composed and fused) on {@code gpu}, one CSV line each to {@code out}. */
  public static void kernels(CudaBackend gpu, PrintStream out) {
    CudaBench b = new CudaBench(gpu, out);
    b.gemms();
    b.layerNorms();
    b.memoryBound();
    b.attention();
  }

  /** Only the memory-bound cases of {@link #kernels}: the ViT-H block's elementwise and normalisation passes. */
  public static void memoryBoundKernels(CudaBackend gpu, PrintStream out) {
    new CudaBench(gpu, out).memoryBound();
  }

  /** Only the attention cases of {@link #kernels}. */
  public static void attentionKernels(CudaBackend gpu, PrintStream out) {
    new CudaBench(gpu, out).attention();
  }

  private Tensor rand(DType t, int... dims) {
    Tensor x = Tensor.empty(Shape.of(dims), t, gpu, MemoryCategory.ACTIVATION);
    k.uniform(x, seed++, 0);
    k.binaryScalar(BinaryOp.SUB, x, 0.5, x);
    return x;
  }

  /** Median milliseconds per run of {@code body}: REPS event-timed groups of ITERS runs, after WARMUP untimed runs. */
  private double time(Runnable body) {
    for (int i = 0; i < WARMUP; i++) body.run();
    gpu.synchronize();
    var d = gpu.driver();
    long start = d.eventCreate(), end = d.eventCreate();
    double[] ms = new double[REPS];
    for (int r = 0; r < REPS; r++) {
      d.eventRecord(start, gpu.stream());
      for (int i = 0; i < ITERS; i++) body.run();
      d.eventRecord(end, gpu.stream());
      d.eventSynchronize(end);
      ms[r] = d.elapsedMillis(start, end) / ITERS;
    }
    d.eventDestroy(start);
    d.eventDestroy(end);
    Arrays.sort(ms);
    return ms[REPS / 2];
  }

  private void report(String name, String shape, double ms, double flops) {
    out.printf("colossal4j,%s,%s,%.4f,%s,,%n", name, shape, ms, flops > 0 ? String.format("%.1f", flops / ms / 1e9) : "");
    out.flush();
  }

  /** [m, k] x [n, k]^T as a linear layer (PyTorch's weight layout). */
  private void gemm(String name, int m, int n, int kk) {
    Tensor x = rand(DType.BF16, m, kk), w = rand(DType.BF16, n, kk), y = Tensor.empty(Shape.of(m, n), DType.BF16, gpu);
    Tensor wt = w.view(Shape.of(kk, n), new long[] {1, kk}, 0);
    double ms = time(() -> k.matmul(x, wt, y, false));
    report(name, m + "x" + n + "x" + kk, ms, 2.0 * m * n * kk);
    for (Tensor t : List.of(x, w, y)) t.storage().release();
  }

  private void gemms() {
    gemm("gemm_square", 4096, 4096, 4096);
    gemm("gemm_square", 8192, 8192, 8192);
    int vit = 32 * 577, gpt = 8 * 1024;
    gemm("gemm_vit_qkv", vit, 3 * 1280, 1280);
    gemm("gemm_vit_fc1", vit, 5120, 1280);
    gemm("gemm_vit_fc2", vit, 1280, 5120);
    gemm("gemm_gpt_qkv", gpt, 3 * 1024, 1024);
    gemm("gemm_gpt_fc1", gpt, 4096, 1024);
    gemm("gemm_gpt_fc2", gpt, 1024, 4096);
  }

  private void layerNorm(String name, int rows, int n) {
    Tensor x = rand(DType.BF16, rows, n), w = rand(DType.BF16, n), b = rand(DType.BF16, n), y = Tensor.empty(Shape.of(rows, n), DType.BF16, gpu);
    Tensor mean = Tensor.empty(Shape.of(rows), DType.F32, gpu), rstd = Tensor.empty(Shape.of(rows), DType.F32, gpu);
    Tensor gy = rand(DType.BF16, rows, n), gx = Tensor.empty(Shape.of(rows, n), DType.BF16, gpu);
    Tensor gw = Tensor.empty(Shape.of(n), DType.BF16, gpu), gb = Tensor.empty(Shape.of(n), DType.BF16, gpu);
    String shape = rows + "x" + n;
    report(name + "_fwd", shape, time(() -> k.layerNorm(x, w, b, 1e-6, y, mean, rstd)), 0);
    report(name + "_fwd_bwd", shape, time(() -> {
      k.layerNorm(x, w, b, 1e-6, y, mean, rstd);
      k.layerNormBackward(gy, x, w, mean, rstd, gx, gw, gb);
    }), 0);
    for (Tensor t : List.of(x, w, b, y, mean, rstd, gy, gx, gw, gb)) t.storage().release();
  }

  private void reportBytes(String name, String shape, double ms, double bytes, String kernel) {
    out.printf("colossal4j,%s,%s,%.4f,,%.1f,%n", name, shape, ms, bytes / ms / 1e6);
    out.flush();
    System.err.printf("%s %s: %.4f ms, %.2f TB/s (%s: %s)%n", name, shape, ms, bytes / ms / 1e9, kernel, ((CudaKernels) gpu.kernels()).registers(kernel));
  }

  /**
   * The memory-bound passes of a ViT-H step at its shapes (32·577 tokens; bf16): GELU forward and its backward fused
   * with fc1's bias gradient over [tokens, 5120], layer norm's backward with a pending residual gradient over
   * [tokens, 1280], a plain add as the bandwidth reference; and the argmax over GPT-2's logits (top-1 accuracy). The
   * throughput column is GB/s of compulsory traffic.
   */
  private void memoryBound() {
    int rows = 32 * 577, hidden = 5120, width = 1280;
    Tensor h = rand(DType.BF16, rows, hidden), g = rand(DType.BF16, rows, hidden), o = Tensor.empty(Shape.of(rows, hidden), DType.BF16, gpu);
    Tensor gb = Tensor.empty(Shape.of(hidden), DType.BF16, gpu);
    String shape = rows + "x" + hidden;
    double big = (double) rows * hidden * 2;
    reportBytes("add_vit_mlp", shape, time(() -> k.binary(BinaryOp.ADD, h, g, o)), 3 * big, "ew_binary_bbb");
    reportBytes("gelu_vit_fwd", shape, time(() -> k.unary(UnaryOp.GELU, h, o)), 2 * big, "ew_unary_bb");
    reportBytes("gelu_vit_bwd_bias", shape, time(() -> k.geluBackwardBiasGrad(BinaryOp.GELU_BACKWARD, h, g, o, gb)), 3 * big, "gelu_bwd_colsum_bbb");
    for (Tensor t : List.of(h, g, o, gb)) t.storage().release();
    Tensor x = rand(DType.BF16, rows, width), w = rand(DType.BF16, width), b = rand(DType.BF16, width), y = Tensor.empty(Shape.of(rows, width), DType.BF16, gpu);
    Tensor mean = Tensor.empty(Shape.of(rows), DType.F32, gpu), rstd = Tensor.empty(Shape.of(rows), DType.F32, gpu);
    Tensor gy = rand(DType.BF16, rows, width), pending = rand(DType.BF16, rows, width), gx = Tensor.empty(Shape.of(rows, width), DType.BF16, gpu);
    Tensor gw = Tensor.empty(Shape.of(width), DType.BF16, gpu), gbn = Tensor.empty(Shape.of(width), DType.BF16, gpu);
    double small = (double) rows * width * 2;
    shape = rows + "x" + width;
    reportBytes("layernorm_vit_fwd", shape, time(() -> k.layerNorm(x, w, b, 1e-6, y, mean, rstd)), 2 * small, "ln_vec_bf16_5");
    k.layerNorm(x, w, b, 1e-6, y, mean, rstd);
    reportBytes("layernorm_vit_bwd_acc", shape, time(() -> k.layerNormBackwardAccumulate(gy, x, w, mean, rstd, pending, gx, gw, gbn)), 4 * small,
        "ln_vec_bwd_wb_bf16_5");
    for (Tensor t : List.of(x, w, b, y, mean, rstd, gy, pending, gx, gw, gbn)) t.storage().release();
    // top-1 accuracy's argmax over GPT-2's logits (8 x 1024 tokens, vocabulary 50304), which the Engine runs every step
    int tokens = 8 * 1024, vocab = 50304;
    Tensor logits = rand(DType.BF16, tokens, vocab), pred = Tensor.empty(Shape.of(tokens, 1), DType.I64, gpu);
    reportBytes("argmax_gpt_logits", tokens + "x" + vocab, time(() -> k.reduce(ReduceOp.ARGMAX, logits, new int[] {1}, pred)),
        (double) tokens * vocab * 2, "arg_rows_dense_b");
    for (Tensor t : List.of(logits, pred)) t.storage().release();
  }

  private void layerNorms() {
    layerNorm("layernorm_vit", 32 * 577, 1280);
    layerNorm("layernorm_gpt", 8 * 1024, 1024);
  }

  /** Attention from our kernels, [B, H, T, D] bf16, no mask: S = QK^T/sqrt(D), P = softmax(S), O = PV, and the backward. */
  private void attention(String name, int b, int h, int t, int d) {
    Tensor q = rand(DType.BF16, b, h, t, d), kk = rand(DType.BF16, b, h, t, d), v = rand(DType.BF16, b, h, t, d);
    Tensor s = Tensor.empty(Shape.of(b, h, t, t), DType.BF16, gpu), p = Tensor.empty(Shape.of(b, h, t, t), DType.BF16, gpu);
    Tensor o = Tensor.empty(Shape.of(b, h, t, d), DType.BF16, gpu), go = rand(DType.BF16, b, h, t, d);
    Tensor gp = Tensor.empty(Shape.of(b, h, t, t), DType.BF16, gpu), gs = Tensor.empty(Shape.of(b, h, t, t), DType.BF16, gpu);
    Tensor gq = Tensor.empty(Shape.of(b, h, t, d), DType.BF16, gpu), gk = Tensor.empty(Shape.of(b, h, t, d), DType.BF16, gpu);
    Tensor gv = Tensor.empty(Shape.of(b, h, t, d), DType.BF16, gpu);
    double scale = 1 / Math.sqrt(d);
    Runnable fwd = () -> {
      k.matmul(q, transposed(kk), s, false);
      k.binaryScalar(BinaryOp.MUL, s, scale, s);
      k.softmax(s, 3, false, p);
      k.matmul(p, v, o, false);
    };
    Runnable bwd = () -> {
      k.matmul(transposed(p), go, gv, false);
      k.matmul(go, transposed(v), gp, false);
      k.softmaxBackward(p, gp, 3, false, gs);
      k.binaryScalar(BinaryOp.MUL, gs, scale, gs);
      k.matmul(gs, kk, gq, false);
      k.matmul(transposed(gs), q, gk, false);
    };
    String shape = b + "x" + h + "x" + t + "x" + d;
    double flopsFwd = 4.0 * b * h * t * t * d;
    report(name + "_fwd", shape, time(fwd), flopsFwd);
    report(name + "_fwd_bwd", shape, time(() -> { fwd.run(); bwd.run(); }), flopsFwd * 3);
    for (Tensor x : new ArrayList<>(List.of(q, kk, v, s, p, o, go, gp, gs, gq, gk, gv))) x.storage().release();
  }

  private static Tensor transposed(Tensor t) {
    int r = t.rank();
    int[] dims = t.shape().toArray();
    long[] st = t.strides();
    int tmp = dims[r - 1]; dims[r - 1] = dims[r - 2]; dims[r - 2] = tmp;
    long ts = st[r - 1]; st[r - 1] = st[r - 2]; st[r - 2] = ts;
    return t.view(Shape.of(dims), st, t.offset());
  }

  private void attention() {
    attention("attention_vit", 32, 16, 577, 80);
    attention("attention_gpt", 8, 16, 1024, 64);
    for (CudaAttention.Variant v : CudaAttention.Variant.values()) {
      String tag = switch (v) {
        case WIDE -> "_fused";
        case SPLIT_DQ -> "_fused2";
        case ATOMIC_DQ -> "_fused_atomic";
      };
      var fa = new CudaAttention((CudaKernels) k, v);
      fused("attention_vit" + tag, 32, 16, 577, 80, false, fa);
      fused("attention_gpt" + tag, 8, 16, 1024, 64, false, fa);
      fused("attention_gpt_causal" + tag, 8, 16, 1024, 64, true, fa);
    }
    var fallback = new CudaAttention((CudaKernels) k, CudaAttention.Variant.WIDE);
    var cudnn = new CudnnAttention((CudaKernels) k, fallback);
    System.err.println("attention_*_cudnn: " + cudnn.describe() + ", plans " + gpu.cudnnPlans());
    cudnnCases("_cudnn", cudnn);
    if (gpu.cudnnPlans() == CudaOptions.CudnnPlans.AUTOTUNE) {
      // the heuristics' first plan, untimed (what autotuning is measured against), in the same run
      var heuristic = new CudnnAttention((CudaKernels) k, fallback, CudaOptions.CudnnPlans.HEURISTIC, tag -> true);
      System.err.println("attention_*_cudnn_heur: the heuristics' first plan");
      cudnnCases("_cudnn_heur", heuristic);
      // knob variants too, last: configurations the heuristics did not offer
      var explore = new CudnnAttention((CudaKernels) k, fallback, CudaOptions.CudnnPlans.EXPLORE, tag -> true);
      System.err.println("attention_*_cudnn_knobs: autotuned with knob variants");
      cudnnCases("_cudnn_knobs", explore);
    }
  }

  /** The three attention cases on one cuDNN attention; each case's chosen engines (and candidates' times) to stderr after it. */
  private void cudnnCases(String tag, CudnnAttention cudnn) {
    try {
      java.util.Set<String> shown = new java.util.HashSet<>();
      fused("attention_vit" + tag, 32, 16, 577, 80, false, cudnn);
      engines(cudnn, shown);
      fused("attention_gpt" + tag, 8, 16, 1024, 64, false, cudnn);
      engines(cudnn, shown);
      fused("attention_gpt_causal" + tag, 8, 16, 1024, 64, true, cudnn);
      engines(cudnn, shown);
      long[] calls = cudnn.calls();
      System.err.println("cudnn calls " + calls[0] + ", fallbacks to our kernel " + calls[1] + (calls[1] > 0 ? " (" + cudnn.refusal() + ")" : ""));
    } finally {
      cudnn.close();
    }
  }

  private static void engines(CudnnAttention cudnn, java.util.Set<String> shown) {
    for (CudnnTuner.Choice c : cudnn.engines()) if (shown.add(c.label())) System.err.println("  cudnn " + c.describe());
  }

  /** One fused attention kernel (a generation of ours, or cuDNN's), [B, H, T, D] bf16, forward and forward+backward. */
  private void fused(String name, int b, int h, int t, int d, boolean causal, io.colossal4j.backend.FusedAttention fa) {
    Tensor q = rand(DType.BF16, b, h, t, d), kk = rand(DType.BF16, b, h, t, d), v = rand(DType.BF16, b, h, t, d);
    Tensor o = Tensor.empty(Shape.of(b, h, t, d), DType.BF16, gpu), lse = Tensor.empty(Shape.of(b, h, t), DType.F32, gpu);
    Tensor go = rand(DType.BF16, b, h, t, d);
    Tensor gq = Tensor.empty(Shape.of(b, h, t, d), DType.BF16, gpu), gk = Tensor.empty(Shape.of(b, h, t, d), DType.BF16, gpu);
    Tensor gv = Tensor.empty(Shape.of(b, h, t, d), DType.BF16, gpu);
    var spec = new io.colossal4j.backend.FusedAttention.Spec(1 / Math.sqrt(d), causal, 0, 0, 0);
    if (!fa.supports(q, kk, v, null, spec)) throw new IllegalStateException(name + ": the fused kernel declines " + q.shape());
    String shape = b + "x" + h + "x" + t + "x" + d;
    double flopsFwd = 4.0 * b * h * t * t * d * (causal ? 0.5 : 1);
    report(name + "_fwd", shape, time(() -> fa.forward(q, kk, v, null, spec, o, lse)), flopsFwd);
    report(name + "_fwd_bwd", shape, time(() -> {
      fa.forward(q, kk, v, null, spec, o, lse);
      fa.backward(go, q, kk, v, null, o, lse, spec, gq, gk, gv, null);
    }), flopsFwd * 3);
    for (Tensor x : List.of(q, kk, v, o, lse, go, gq, gk, gv)) x.storage().release();
  }
}
