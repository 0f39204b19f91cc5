package io.colossal4j.backend.cuda;

import static io.colossal4j.backend.cuda.CudaTestSupport.CPU;
import static io.colossal4j.backend.cuda.CudaTestSupport.assertClose;
import static io.colossal4j.backend.cuda.CudaTestSupport.gpu;
import static io.colossal4j.backend.cuda.CudaTestSupport.like;
import static io.colossal4j.backend.cuda.CudaTestSupport.outputs;
import static io.colossal4j.backend.cuda.CudaTestSupport.random;
import static io.colossal4j.backend.cuda.CudaTestSupport.toGpu;

import io.colossal4j.backend.ReduceOp;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Reductions, matmul (cuBLASLt and the generic kernel), softmax and layer norm on CUDA against the scalar
 * reference, on fresh random inputs with poisoned outputs. Tolerances are stated per case: float
 * accumulation of n terms against the reference's double sums (relative n * 2^-24 worst case, far less
 * for tree sums), then one rounding to the output dtype.
 */
class CudaNormMatmulConformanceTest {
  private final Random rnd = new Random(7);

  private static Tensor pairOut(Tensor[] o) { return o[1]; }

  @Test void reductionsOverAnyDimsAndStrides() {
    Shape shape = Shape.of(6, 37, 9);
    for (DType t : List.of(DType.F32, DType.BF16, DType.F64, DType.I32))
      for (int[] dims : new int[][] {{2}, {0}, {1}, {0, 2}, {0, 1, 2}})
        for (ReduceOp op : ReduceOp.values()) {
          if ((op == ReduceOp.ARGMAX || op == ReduceOp.ARGMIN) && dims.length != 1) continue;
          double lo = op == ReduceOp.PROD ? 0.8 : -2, hi = op == ReduceOp.PROD ? 1.2 : 2;
          Tensor x = random(rnd, shape, t, t == DType.I32 ? -5 : lo, t == DType.I32 ? 5 : hi);
          Tensor gx = toGpu(x);
          // also through a permuted view, so the reduced dim is not the innermost in memory
          Tensor xp = x.view(Shape.of(9, 37, 6), new long[] {1, 9, 333}, 0);
          for (Tensor xv : List.of(x, xp)) {
            int[] keep = xv.shape().toArray();
            for (int d : dims) keep[d] = 1;
            DType outT = op == ReduceOp.ARGMAX || op == ReduceOp.ARGMIN ? DType.I64 : t;
            Tensor[] o = outputs(Shape.of(keep), outT);
            CPU.kernels().reduce(op, xv, dims, o[0]);
            gpu().kernels().reduce(op, like(gx, xv), dims, o[1]);
            long n = 1;
            for (int d : dims) n *= xv.size(d);
            // sums of n float terms: 4 n 2^-24 relative to the sum of magnitudes (bounded here by 2n), plus the output rounding
            double atol = outT.isFloating() ? 8.0 * n * n * 0x1p-24 + (t == DType.BF16 ? 0.02 * n : 0) : 0;
            assertClose(op + " dims " + java.util.Arrays.toString(dims) + " " + t + " " + xv.shape(), o[0], pairOut(o),
                CudaTestSupport.rtol(outT), atol);
          }
        }
  }

  @Test void argmaxTiesAndNaNFollowTheReference() {
    Tensor x = Tensor.of(new double[] {1, 3, 3, 0, 2, Double.NaN, 5, Double.NaN, 4, 4, 4, 4}, Shape.of(3, 4), DType.F32, CPU);
    for (ReduceOp op : List.of(ReduceOp.ARGMAX, ReduceOp.ARGMIN, ReduceOp.MAX, ReduceOp.MIN)) {
      DType outT = op == ReduceOp.ARGMAX || op == ReduceOp.ARGMIN ? DType.I64 : DType.F32;
      Tensor[] o = outputs(Shape.of(3, 1), outT);
      CPU.kernels().reduce(op, x, new int[] {1}, o[0]);
      gpu().kernels().reduce(op, toGpu(x), new int[] {1}, o[1]);
      assertClose(op + " ties/NaN", o[0], o[1], 0, 0);
    }
  }

  /**
   * The dense last-dim ARGMAX/ARGMIN (contiguous bf16/f32 rows, n % 8 == 0: arg_rows_dense) against the CPU
   * reference, exactly: rows whose extreme value appears twice (the lower index wins), rows with one NaN and with two
   * (the first NaN wins), a row of equal values, a row of -inf (each thread's first element is taken whatever it is), and
   * GPT-sized rows (50304: 6288 vectors over 1024 threads).
   */
  @Test void denseArgReductionsOverTheLastDimFollowTheReference() {
    Random r = new Random(11);
    for (int n : new int[] {8, 1000, 50304})
      for (DType t : new DType[] {DType.BF16, DType.F32}) {
        int rows = n == 50304 ? 9 : 37;
        double[] v = new double[rows * n];
        for (int i = 0; i < v.length; i++) v[i] = r.nextInt(2000) / 100.0 - 10;   // exact in bf16 up to rounding: ties happen
        for (int row = 0; row < rows; row++) {
          int base = row * n;
          switch (row % 6) {
            case 0 -> { v[base + n / 3] = 50; v[base + n - 1] = 50; v[base + n / 5] = -50; v[base + n / 2] = -50; }   // repeated extremes
            case 1 -> v[base + n / 2] = Double.NaN;
            case 2 -> { v[base + n - 2] = Double.NaN; v[base + 1] = Double.NaN; }
            case 3 -> java.util.Arrays.fill(v, base, base + n, 3.0);
            case 4 -> java.util.Arrays.fill(v, base, base + n, Double.NEGATIVE_INFINITY);
            default -> { }
          }
        }
        Tensor x = Tensor.of(v, Shape.of(rows, n), t, CPU);
        for (ReduceOp op : List.of(ReduceOp.ARGMAX, ReduceOp.ARGMIN)) {
          Tensor[] o = outputs(Shape.of(rows, 1), DType.I64);
          CPU.kernels().reduce(op, x, new int[] {1}, o[0]);
          gpu().kernels().reduce(op, toGpu(x), new int[] {1}, o[1]);
          assertClose(op + " " + t + " n=" + n, o[0], o[1], 0, 0);
        }
      }
  }

  /** Matmul cases: [batch dims..., M, K] @ [..., K, N] with optional transposed (column-major) operands. */
  private void matmulCase(DType t, int[] batch, int m, int k, int n, boolean transA, boolean transB, boolean broadcastB, boolean accumulate) {
    int r = batch.length + 2;
    int[] as = concat(batch, transA ? new int[] {k, m} : new int[] {m, k});
    int[] bs = concat(broadcastB ? new int[0] : batch, transB ? new int[] {n, k} : new int[] {k, n});
    Tensor a = random(rnd, Shape.of(as), t, -1, 1), b = random(rnd, Shape.of(bs), t, -1, 1);
    Tensor av = viewAs(a, batch, m, k, transA, false), bv = viewAs(b, batch, k, n, transB, broadcastB);
    Tensor ga = toGpu(a), gb = toGpu(b);
    Tensor[] o = outputs(Shape.of(concat(batch, new int[] {m, n})), t);
    if (accumulate) {
      Tensor init = random(rnd, o[0].shape(), t, -1, 1);
      CPU.kernels().copy(init, o[0]);
      gpu().kernels().copy(toGpu(init), o[1]);
    }
    CPU.kernels().matmul(av, bv, o[0], accumulate);
    gpu().kernels().matmul(like(ga, av), like(gb, bv), o[1], accumulate);
    // f32 accumulation of k products of |a|,|b| <= 1: error <= k 2^-24 (cuBLASLt COMPUTE_32F; no TF32), then the output rounding
    double atol = t == DType.F64 ? 1e-12 : t.isFloating() ? 2.0 * k * 0x1p-24 + (t == DType.BF16 ? 0.02 : t == DType.F16 ? 0.004 : 0) : 0;
    assertClose("matmul " + t + " batch " + java.util.Arrays.toString(batch) + " " + m + "x" + k + "x" + n
        + (transA ? " aT" : "") + (transB ? " bT" : "") + (broadcastB ? " b-broadcast" : "") + (accumulate ? " acc" : ""),
        o[0], o[1], CudaTestSupport.rtol(t), atol);
    if (r < 2) throw new AssertionError();
  }

  private static int[] concat(int[] a, int[] b) {
    int[] c = java.util.Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, c, a.length, b.length);
    return c;
  }

  /** The [batch..., rows, cols] view of t: swapping the last two dims when stored transposed, stride 0 over batch when broadcast. */
  private static Tensor viewAs(Tensor t, int[] batch, int rows, int cols, boolean trans, boolean broadcast) {
    long[] st = t.strides();
    int tr = t.rank();
    long[] out = new long[batch.length + 2];
    for (int d = 0; d < batch.length; d++) out[d] = broadcast ? 0 : st[d];
    out[batch.length] = trans ? st[tr - 1] : st[tr - 2];
    out[batch.length + 1] = trans ? st[tr - 2] : st[tr - 1];
    return t.view(Shape.of(concat(batch, new int[] {rows, cols})), out, t.offset());
  }

  @Test void matmulThroughCublasLtAndTheGenericKernel() {
    for (DType t : List.of(DType.F32, DType.BF16, DType.F16)) {
      matmulCase(t, new int[0], 64, 48, 80, false, false, false, false);
      matmulCase(t, new int[0], 33, 17, 9, true, false, false, false);
      matmulCase(t, new int[0], 33, 17, 9, false, true, false, true);
      matmulCase(t, new int[0], 1, 128, 7, true, true, false, false);
      matmulCase(t, new int[] {3}, 20, 24, 12, false, false, false, false);
      matmulCase(t, new int[] {2, 3}, 20, 24, 12, false, true, false, true);
      matmulCase(t, new int[] {2, 5}, 16, 32, 24, false, true, true, false); // linear layer: b broadcast over the batch
      matmulCase(t, new int[] {4}, 16, 32, 24, true, false, true, false);   // broadcast b, a not foldable
    }
    // generic kernel: f64, i32, and mixed dtypes
    matmulCase(DType.F64, new int[] {2}, 19, 23, 17, true, false, false, true);
    matmulCase(DType.I32, new int[0], 8, 9, 10, false, true, false, false);
  }

  @Test void softmaxAndLogSoftmaxForwardBackward() {
    for (DType t : List.of(DType.F32, DType.BF16, DType.F64))
      for (int dim : new int[] {2, 1})
        for (boolean log : new boolean[] {false, true}) {
          Shape s = Shape.of(3, 300, 7 + dim * 60);
          Tensor x = random(rnd, s, t, -6, 6);
          Tensor[] y = outputs(s, t);
          CPU.kernels().softmax(x, dim, log, y[0]);
          gpu().kernels().softmax(toGpu(x), dim, log, y[1]);
          double atol = t == DType.F32 ? 1e-6 : t == DType.F64 ? 1e-12 : 0.02;
          assertClose("softmax dim " + dim + (log ? " log " : " ") + t, y[0], y[1], CudaTestSupport.rtol(t), atol);
          // backward from the reference's y, so both sides start from identical inputs
          Tensor gy = random(rnd, s, t, -1, 1);
          Tensor[] gx = outputs(s, t);
          CPU.kernels().softmaxBackward(y[0], gy, dim, log, gx[0]);
          gpu().kernels().softmaxBackward(toGpu(y[0]), toGpu(gy), dim, log, gx[1]);
          assertClose("softmax backward dim " + dim + (log ? " log " : " ") + t, gx[0], gx[1], CudaTestSupport.rtol(t), atol * 10);
        }
  }

  /**
   * Contiguous rows whose length is a multiple of 8 take the dense row kernels (vectorised, one block per row),
   * including a vocabulary-sized row and rows holding a NaN or only -inf (NaN rows, as the reference).
   */
  @Test void softmaxOverDenseRows() {
    for (DType t : List.of(DType.F32, DType.BF16))
      for (int n : new int[] {8, 1000, 50304})
        for (boolean log : new boolean[] {false, true}) {
          Shape s = Shape.of(4, n);
          double[] v = random(rnd, s, t, -6, 6).toDoubleArray();
          v[n + 5] = Double.NaN;                                         // row 1 has a NaN
          for (int i = 2 * n; i < 3 * n; i++) v[i] = Double.NEGATIVE_INFINITY;   // row 2 is all -inf
          Tensor x = Tensor.of(v, s, t, CPU);
          Tensor[] y = outputs(s, t);
          CPU.kernels().softmax(x, 1, log, y[0]);
          gpu().kernels().softmax(toGpu(x), 1, log, y[1]);
          // as softmaxAndLogSoftmaxForwardBackward; sums of up to 50304 float terms stay within the rtol
          double atol = t == DType.F32 ? 1e-6 : 0.02;
          assertClose("dense softmax n=" + n + (log ? " log " : " ") + t, y[0], y[1], CudaTestSupport.rtol(t), atol);
          Tensor yFinite = random(rnd, s, t, log ? -12 : 0, log ? 0 : 1.0 / n);
          Tensor gy = random(rnd, s, t, -1, 1);
          Tensor[] gx = outputs(s, t);
          CPU.kernels().softmaxBackward(yFinite, gy, 1, log, gx[0]);
          gpu().kernels().softmaxBackward(toGpu(yFinite), toGpu(gy), 1, log, gx[1]);
          // the row dot product sums n terms of |g·y| <= 1 in float against double: n·2^-24 relative of the sum
          assertClose("dense softmax backward n=" + n + (log ? " log " : " ") + t, gx[0], gx[1], CudaTestSupport.rtol(t), atol * 10 + n * 1e-7);
        }
  }

  @Test void layerNormForwardBackwardWithAndWithoutAffine() {
    for (DType t : List.of(DType.F32, DType.BF16))
      for (int n : new int[] {64, 1024, 1280, 20000})
        for (boolean affine : new boolean[] {true, false}) {
          // 3001 rows: several rows per warp in the one-pass backward (two blocks of 4 warps per SM)
          int rows = n == 20000 ? 5 : n == 1024 ? 3001 : 33;
          Shape s = Shape.of(rows, n);
          Tensor x = random(rnd, s, t, -3, 5), w = affine ? random(rnd, Shape.of(n), t, 0.5, 1.5) : null;
          Tensor b = affine ? random(rnd, Shape.of(n), t, -1, 1) : null;
          Tensor[] y = outputs(s, t), mean = outputs(Shape.of(rows), DType.F32), rstd = outputs(Shape.of(rows), DType.F32);
          CPU.kernels().layerNorm(x, w, b, 1e-5, y[0], mean[0], rstd[0]);
          Tensor gw0 = affine ? toGpu(w) : null, gb0 = affine ? toGpu(b) : null;
          gpu().kernels().layerNorm(toGpu(x), gw0, gb0, 1e-5, y[1], mean[1], rstd[1]);
          String what = "layerNorm n=" + n + (affine ? " affine " : " ") + t;
          double atol = t == DType.F32 ? 2e-5 : 0.05;
          assertClose(what + " y", y[0], y[1], CudaTestSupport.rtol(t), atol);
          assertClose(what + " mean", mean[0], mean[1], 1e-5, 1e-5);
          assertClose(what + " rstd", rstd[0], rstd[1], 1e-4, 0);
          Tensor gy = random(rnd, s, t, -1, 1);
          Tensor[] gx = outputs(s, t), gw = outputs(Shape.of(n), t), gb = outputs(Shape.of(n), t);
          CPU.kernels().layerNormBackward(gy, x, w, mean[0], rstd[0], gx[0], affine ? gw[0] : null, affine ? gb[0] : null);
          gpu().kernels().layerNormBackward(toGpu(gy), toGpu(x), gw0, toGpu(mean[0]), toGpu(rstd[0]), gx[1], affine ? gw[1] : null, affine ? gb[1] : null);
          assertClose(what + " gx", gx[0], gx[1], CudaTestSupport.rtol(t), t == DType.F32 ? 1e-4 : 0.05);
          if (affine) {
            // column sums over rows: float accumulation of `rows` terms of magnitude <= ~5
            assertClose(what + " gw", gw[0], gw[1], CudaTestSupport.rtol(t), t == DType.F32 ? rows * 5e-6 : 0.1);
            assertClose(what + " gb", gb[0], gb[1], CudaTestSupport.rtol(t), t == DType.F32 ? rows * 5e-6 : 0.1);
          }
        }
  }
}
