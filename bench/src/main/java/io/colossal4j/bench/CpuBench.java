package io.colossal4j.bench;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.nn.Activation;
import ai.djl.nn.convolutional.Conv2d;
import ai.djl.nn.norm.LayerNorm;
import ai.djl.training.GradientCollector;
import io.colossal4j.autograd.Autograd;
import io.colossal4j.backend.BinaryOp;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.backend.cpu.blas.ffi.OpenBlas;
import io.colossal4j.ops.Arith;
import io.colossal4j.ops.Conv;
import io.colossal4j.ops.Norm;
import io.colossal4j.ops.Reduce;
import io.colossal4j.ops.Softmax;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;
import java.util.function.Supplier;

/**
 * The CPU benchmark: our fast CPU backend against PyTorch CPU (libtorch 2.7.1 through DJL) and, for sgemm,
 * OpenBLAS 0.3.31 through FFM, all on the same number of threads in one process. Ours runs through the
 * public ops (allocating its outputs, as PyTorch's eager ops do); OpenBLAS writes into a preallocated C.
 * Every output is released right after its call on both sides, so memory stays flat.
 */
final class CpuBench {
  private CpuBench() {}

  /**
   * Minimum warm-up per side and case, and rounds per case. On this shared machine the JIT compiles our
   * kernels' hot methods seconds after their first call (its compiler threads compete with the other
   * builds), and a 2 s warm-up could end on a plateau of not-yet-optimised code; more rounds make the
   * medians steadier when the load changes during a case.
   */
  private static final double WARM_S = 6;
  private static final int ROUNDS = 9;
  /**
   * Rounds of the memory-bound elementwise cases: their rounds are short and their per-round ratios spread widest
   * (both sides wait on the memory the other tenants of the host share), so they take more.
   */
  private static final int STREAM_ROUNDS = 21;

  /** Case groups {@code --only} may name. */
  private static final java.util.Set<String> GROUPS = java.util.Set.of("sgemm", "conv", "rows", "elementwise");

  /** The groups in the order a full run takes them. */
  static final java.util.List<String> ORDER = java.util.List.of("sgemm", "conv", "rows", "elementwise");

  /** Runs every case group, or only {@code only} when it is not null. */
  static void run(int threads, String only) {
    if (only != null && !GROUPS.contains(only)) throw new IllegalArgumentException("--only must be one of " + GROUPS + ", got " + only);
    System.setProperty("ai.djl.pytorch.num_threads", Integer.toString(threads));
    System.setProperty("ai.djl.pytorch.num_interop_threads", "1");
    Engine torch = Engine.getEngine("PyTorch");
    OpenBlas blas = OpenBlas.load();
    blas.threads(threads);
    System.out.printf("colossal4j bench cpu: threads=%d, PyTorch %s (DJL), OpenBLAS %s, Java %s%n", threads, torch.getVersion(),
        blas.config().trim(), Runtime.version());
    System.out.println("load average at start: " + loadAverage());
    Random rnd = new Random(1);
    try (CpuBackend cpu = CpuBackend.create(threads); NDManager nd = NDManager.newBaseManager(ai.djl.Device.cpu(), "PyTorch");
         Arena arena = Arena.ofShared()) {
      if (only == null || only.equals("sgemm")) for (int n : new int[] {256, 512, 1024, 2048}) sgemm(cpu, nd, arena, blas, rnd, n);
      if (only == null || only.equals("conv")) {
        conv(cpu, nd, rnd, false);
        conv(cpu, nd, rnd, true);
      }
      if (only == null || only.equals("rows")) rows(cpu, nd, rnd);
      if (only == null || only.equals("elementwise")) elementwise(cpu, nd, rnd);
    }
    System.out.println("load average at end: " + loadAverage());
  }

  /** The 1, 5 and 15 minute load averages (Linux), so a result carries the load it was measured under. */
  private static String loadAverage() {
    try {
      String[] f = java.nio.file.Files.readString(java.nio.file.Path.of("/proc/loadavg")).trim().split(" ");
      return f[0] + " " + f[1] + " " + f[2];
    } catch (java.io.IOException e) {
      return "unknown (" + e.getMessage() + ")";
    }
  }

  private static float[] data(Random rnd, long n) {
    float[] d = new float[Math.toIntExact(n)];
    for (int i = 0; i < d.length; i++) d[i] = rnd.nextFloat() * 2 - 1;
    return d;
  }

  private static Tensor ours(CpuBackend cpu, float[] d, int... shape) { return Tensor.of(d, Shape.of(shape), cpu); }

  private static NDArray theirs(NDManager nd, float[] d, int... shape) {
    long[] s = new long[shape.length];
    for (int i = 0; i < s.length; i++) s[i] = shape[i];
    return nd.create(d, new ai.djl.ndarray.types.Shape(s));
  }

  /**
   * The end of a case's line: the quartiles of the per-round ratios, then {@code ratio=} their median, our throughput
   * over the peer's (body 0 is ours).
   */
  private static String ratio(Measure.Timing t, int peer) {
    return String.format(" rounds=%s ratio=%.2f", t.spread(0, peer), t.ratio(0, peer));
  }

  /** Runs our op and releases its output. */
  private static Runnable ourCall(Supplier<Tensor> op) { return () -> op.get().storage().release(); }

  /** Runs the PyTorch op and frees its output. */
  private static Runnable torchCall(Supplier<NDArray> op) { return () -> op.get().close(); }

  private static void sgemm(CpuBackend cpu, NDManager nd, Arena arena, OpenBlas blas, Random rnd, int n) {
    float[] da = data(rnd, (long) n * n), db = data(rnd, (long) n * n);
    Tensor a = ours(cpu, da, n, n), b = ours(cpu, db, n, n);
    NDArray ta = theirs(nd, da, n, n), tb = theirs(nd, db, n, n);
    MemorySegment na = arena.allocate((long) n * n * 4, 64), nb = arena.allocate((long) n * n * 4, 64), nc = arena.allocate((long) n * n * 4, 64);
    MemorySegment.copy(da, 0, na, ValueLayout.JAVA_FLOAT, 0, da.length);
    MemorySegment.copy(db, 0, nb, ValueLayout.JAVA_FLOAT, 0, db.length);
    Measure.Timing t = Measure.sideBySide(WARM_S, ROUNDS, ourCall(() -> io.colossal4j.ops.LinAlg.matmul(a, b)),
        () -> blas.sgemm(false, false, n, n, n, na, nb, 0f, nc), torchCall(() -> ta.matMul(tb)));
    double flops = 2.0 * n * n * n;
    int peer = t.faster(1, 2);
    System.out.printf("sgemm %dx%dx%d: ours %.1f GFLOP/s, OpenBLAS %.1f GFLOP/s, PyTorch %.1f GFLOP/s, peer=%s%s%n",
        n, n, n, flops / t.median(0) / 1e9, flops / t.median(1) / 1e9, flops / t.median(2) / 1e9, peer == 1 ? "OpenBLAS" : "PyTorch", ratio(t, peer));
    ta.close();
    tb.close();
  }

  /** 3×3, 64→64 channels, 56×56, batch 8, padding 1: forward only, or forward + backward of sum(y). */
  private static void conv(CpuBackend cpu, NDManager nd, Random rnd, boolean backward) {
    int batch = 8, c = 64, hw = 56;
    float[] dx = data(rnd, (long) batch * c * hw * hw), dw = data(rnd, (long) c * c * 9);
    Tensor x = ours(cpu, dx, batch, c, hw, hw), w = ours(cpu, dw, c, c, 3, 3);
    NDArray tx = theirs(nd, dx, batch, c, hw, hw), tw = theirs(nd, dw, c, c, 3, 3);
    ai.djl.ndarray.types.Shape one = new ai.djl.ndarray.types.Shape(1, 1);
    Runnable mine, peer;
    if (!backward) {
      mine = ourCall(() -> Conv.conv2d(x, w, null, 1, 1, 1, 1));
      peer = torchCall(() -> Conv2d.conv2d(tx, tw, null, one, one, one, 1).singletonOrThrow());
    } else {
      x.requiresGrad(true);
      w.requiresGrad(true);
      tx.setRequiresGradient(true);
      tw.setRequiresGradient(true);
      mine = () -> {
        Autograd.backward(Reduce.sum(Conv.conv2d(x, w, null, 1, 1, 1, 1)));
        x.grad().storage().release();
        w.grad().storage().release();
        x.setGrad(null);
        w.setGrad(null);
      };
      peer = () -> {
        try (GradientCollector gc = Engine.getEngine("PyTorch").newGradientCollector()) {
          NDList y = Conv2d.conv2d(tx, tw, null, one, one, one, 1);
          NDArray s = y.singletonOrThrow().sum();
          gc.backward(s);
          s.close();
          y.close();
        }
      };
    }
    Measure.Timing t = Measure.sideBySide(WARM_S, ROUNDS, mine, peer);
    double flops = 2.0 * batch * c * hw * hw * c * 9 * (backward ? 3 : 1);
    System.out.printf("conv2d 3x3 64->64 56x56 batch 8 %s: ours %.1f GFLOP/s, PyTorch %.1f GFLOP/s, peer=PyTorch%s%n",
        backward ? "forward+backward" : "forward", flops / t.median(0) / 1e9, flops / t.median(1) / 1e9, ratio(t, 1));
    tx.close();
    tw.close();
  }

  private static void rows(CpuBackend cpu, NDManager nd, Random rnd) {
    int r = 4096, n = 1024;
    float[] dx = data(rnd, (long) r * n), dg = data(rnd, n), db = data(rnd, n);
    Tensor x = ours(cpu, dx, r, n), g = ours(cpu, dg, n), b = ours(cpu, db, n);
    NDArray tx = theirs(nd, dx, r, n), tg = theirs(nd, dg, n), tb = theirs(nd, db, n);
    double gb = 2.0 * r * n * 4 / 1e9; // read x, write y
    Measure.Timing t = Measure.sideBySide(WARM_S, ROUNDS, ourCall(() -> Norm.layerNorm(x, g, b, 1e-5)),
        torchCall(() -> LayerNorm.layerNorm(tx, new ai.djl.ndarray.types.Shape(n), tg, tb, 1e-5f).singletonOrThrow()));
    System.out.printf("layer_norm (4096, 1024): ours %.1f GB/s, PyTorch %.1f GB/s, peer=PyTorch%s%n", gb / t.median(0), gb / t.median(1), ratio(t, 1));
    t = Measure.sideBySide(WARM_S, ROUNDS, ourCall(() -> Softmax.softmax(x, -1)), torchCall(() -> tx.softmax(-1)));
    System.out.printf("softmax (4096, 1024): ours %.1f GB/s, PyTorch %.1f GB/s, peer=PyTorch%s%n", gb / t.median(0), gb / t.median(1), ratio(t, 1));
    tx.close();
    tg.close();
    tb.close();
    layerNormChannels(cpu, nd, rnd);
  }

  /**
   * Layer norm over the channels of NCHW [8, 96, 56, 56] (ConvNeXt's LayerNorm2d). PyTorch runs it as timm
   * does: permute to channels-last, layer_norm, permute back, leaving a permuted view (no copy back); ours
   * returns a contiguous NCHW result.
   */
  private static void layerNormChannels(CpuBackend cpu, NDManager nd, Random rnd) {
    int n = 8, c = 96, hw = 56;
    float[] dx = data(rnd, (long) n * c * hw * hw), dg = data(rnd, c), db = data(rnd, c);
    Tensor x = ours(cpu, dx, n, c, hw, hw), g = ours(cpu, dg, c), b = ours(cpu, db, c);
    NDArray tx = theirs(nd, dx, n, c, hw, hw), tg = theirs(nd, dg, c), tb = theirs(nd, db, c);
    ai.djl.ndarray.types.Shape channels = new ai.djl.ndarray.types.Shape(c);
    double gb = 2.0 * dx.length * 4 / 1e9; // read x, write y
    Measure.Timing t = Measure.sideBySide(WARM_S, ROUNDS, ourCall(() -> Norm.layerNorm2d(x, g, b, 1e-6)), () -> {
      try (NDArray last = tx.transpose(0, 2, 3, 1); NDList y = LayerNorm.layerNorm(last, channels, tg, tb, 1e-6f);
           NDArray back = y.singletonOrThrow().transpose(0, 3, 1, 2)) {
        // closed on exit: the permuted views and the output
      }
    });
    System.out.printf("layer_norm NCHW (8, 96, 56, 56) over C: ours %.1f GB/s, PyTorch %.1f GB/s, peer=PyTorch%s%n", gb / t.median(0), gb / t.median(1), ratio(t, 1));
    tx.close();
    tg.close();
    tb.close();
  }

  /**
   * add and gelu on 16M elements (as asked) and on 4M. The out-of-place add against PyTorch's out-of-place add:
   * PyTorch allocates every output with malloc, and a 64 MiB block is above glibc's largest mmap threshold, so each
   * of its calls maps and page-faults fresh memory, which dominates its time at 16M (at 4M, 16 MiB, its blocks are
   * reused); ours reuses cached blocks. Then a += b in place on both sides (ours: the add kernel with its output
   * aliasing a, as the optimizers use it), the comparison of equal traffic and no allocation on either side: both
   * stream from memory at these sizes, so it also runs ours a second time on buffers of its own, a control whose
   * ratio to the first shows how far two runs of the same kernel on two allocations differ in the same rounds.
   */
  private static void elementwise(CpuBackend cpu, NDManager nd, Random rnd) {
    for (int n : new int[] {16 << 20, 4 << 20}) {
      float[] da = data(rnd, n), db = data(rnd, n);
      Tensor a = ours(cpu, da, n), b = ours(cpu, db, n);
      NDArray ta = theirs(nd, da, n), tb = theirs(nd, db, n), acc = theirs(nd, da, n);
      String size = (n >> 20) + "M";
      double gb = 12.0 * n / 1e9;   // two reads and one write (the output's write-allocate not counted)
      Measure.Timing t = Measure.sideBySide(WARM_S, STREAM_ROUNDS, ourCall(() -> Arith.add(a, b)), torchCall(() -> ta.add(tb)));
      System.out.printf("add %s f32: ours %.1f GB/s, PyTorch %.1f GB/s, peer=PyTorch%s%n", size, gb / t.median(0), gb / t.median(1), ratio(t, 1));
      Tensor mine = ours(cpu, da, n), again = ours(cpu, da, n), againB = ours(cpu, db, n);
      t = Measure.sideBySide(WARM_S, STREAM_ROUNDS, () -> cpu.kernels().binary(BinaryOp.ADD, mine, b, mine), () -> acc.addi(tb),
          () -> cpu.kernels().binary(BinaryOp.ADD, again, againB, again));
      System.out.printf("add in place %s f32: ours %.1f GB/s, PyTorch %.1f GB/s, control (ours on other buffers) %.1f GB/s at %.2f (%s) of ours,"
          + " peer=PyTorch in place%s%n", size, gb / t.median(0), gb / t.median(1), gb / t.median(2), t.ratio(2, 0), t.spread(2, 0), ratio(t, 1));
      for (Tensor x : new Tensor[] {mine, again, againB}) x.storage().release();
      t = Measure.sideBySide(WARM_S, STREAM_ROUNDS, ourCall(() -> Arith.gelu(a)), torchCall(() -> Activation.gelu(ta)));
      System.out.printf("gelu %s f32: ours %.2f Gelem/s, PyTorch %.2f Gelem/s, peer=PyTorch%s%n", size, n / t.median(0) / 1e9, n / t.median(1) / 1e9, ratio(t, 1));
      ta.close();
      tb.close();
      acc.close();
    }
  }
}
