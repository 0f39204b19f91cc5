package io.colossal4j.backend.cpu.simd;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.colossal4j.backend.Kernels;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.backend.cpu.CpuParallel;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/**
 * The skinny GEMMs of linear layers ({@link SkinnyGemm}) against the scalar reference kernels (double sums rounded
 * once to f32), through the Kernels calls a linear layer makes: the forward with its bias (x·wᵀ + b, the weight a
 * transposed view), the input gradient (g·w), and the weight and bias gradients (gᵀ·x, Σ_rows g), at widths that
 * are and are not multiples of the 4-vector tile, row counts that leave short tiles and short chunks, and outputs
 * that sit in wider rows (a write past a row's end would show).
 *
 * <p>Tolerance, per element: an f32 sum of K products in any order errs by at most K·2^-24·Σ|aᵢbᵢ| (the standard
 * bound for recursive summation; the chunked weight gradient sums in two levels, still within it), plus one
 * rounding of the result. Random inputs in [-1, 1) make that about 1e-5 of the element's scale; a dropped, doubled
 * or misplaced product changes the element by about |aᵢbᵢ| ≈ 0.25 on average, far outside it.
 */
class SkinnyGemmTest {
  static final CpuBackend FAST = CpuBackend.create(2);
  static final Kernels REF = CpuBackend.reference().kernels();

  @AfterAll static void close() { FAST.close(); }

  private static final int[] ROWS = {8, 13, 64, 67, 130};
  private static final int[] WIDTHS = {1, 5, 16, 64, 65, 192};

  @Test void forwardWithBiasMatchesTheReference() {
    Random rnd = new Random(3);
    for (int m : ROWS)
      for (int n : WIDTHS)
        for (int k : new int[] {1, 7, 64, 130}) {
          Tensor x = rand(rnd, m, k), w = rand(rnd, n, k), b = rand(rnd, 1, n).view(Shape.of(n), new long[] {1}, 0);
          Tensor wT = w.view(Shape.of(k, n), new long[] {1, k}, 0);
          Tensor fast = wide(m, n), ref = wide(m, n);
          FAST.kernels().matmulBias(x, wT, b, fast);
          REF.matmulBias(x, wT, b, ref);
          compare(fast, ref, boundRows(x, wT, b.view(Shape.of(m, n), new long[] {0, 1}, 0)), "x·wᵀ + b m=" + m + " n=" + n + " k=" + k);
        }
  }

  @Test void inputGradientMatchesTheReferenceOverwritingAndAccumulating() {
    Random rnd = new Random(5);
    for (int m : ROWS)
      for (int n : WIDTHS)
        for (int k : new int[] {3, 100})
          for (boolean acc : new boolean[] {false, true}) {
            Tensor g = rand(rnd, m, n), w = rand(rnd, n, k), start = rand(rnd, m, k);
            Tensor fast = wide(m, k), ref = wide(m, k);
            FAST.kernels().copy(start, fast);
            REF.copy(start, ref);
            FAST.kernels().matmul(g, w, fast, acc);
            REF.matmul(g, w, ref, acc);
            compare(fast, ref, boundRows(g, w, acc ? start : null), "g·w m=" + m + " n=" + n + " k=" + k + (acc ? " accumulating" : ""));
          }
  }

  @Test void weightAndBiasGradientsMatchTheReference() {
    Random rnd = new Random(7);
    for (int m : new int[] {8, 33, 200, 1100})
      for (int n : new int[] {1, 5, 67, 192})
        for (int k : new int[] {1, 16, 129}) {
          Tensor g = rand(rnd, m, n), x = rand(rnd, m, k);
          Tensor gT = g.view(Shape.of(n, m), new long[] {1, n}, 0);
          Tensor fastW = wide(n, k), refW = wide(n, k);
          Tensor fastB = Tensor.zeros(Shape.of(n), DType.F32, FAST), refB = Tensor.zeros(Shape.of(n), DType.F32, FAST);
          FAST.kernels().linearWeightGrad(g, x, fastW, fastB);
          REF.linearWeightGrad(g, x, refW, refB);
          String what = " m=" + m + " n=" + n + " k=" + k;
          double[][] bound = boundRows(gT, x, null);
          compare(fastW, refW, bound, "gᵀ·x" + what);
          Tensor ones = Tensor.full(Shape.of(m, 1), DType.F32, FAST, 1.0);
          compare(fastB.view(Shape.of(n, 1), new long[] {1, 1}, 0), refB.view(Shape.of(n, 1), new long[] {1, 1}, 0),
              boundRows(gT, ones, null), "Σ_rows g" + what);
          Tensor plainW = wide(n, k);   // the matmul of a transposed g goes to the same kernel, without the bias
          FAST.kernels().matmul(gT, x, plainW, false);
          compare(plainW, refW, bound, "matmul gᵀ·x" + what);
        }
  }

  /** A sabotaged tile (its last k step skipped) must fail the comparison above: the tolerance is not too loose. */
  @Test void aKernelMissingOneProductFails() {
    Random rnd = new Random(9);
    int m = 16, n = 64, k = 64;
    Tensor x = rand(rnd, m, k), w = rand(rnd, k, n), fast = wide(m, n), ref = wide(m, n);
    try (CpuParallel par = new CpuParallel(1)) {
      MemorySegment sx = CpuBackend.segment(x), sw = CpuBackend.segment(w), so = CpuBackend.segment(fast);
      SkinnyGemm.rowsTimes(par, m, n, k - 1, new Gemm.Mat(sx, 0, k, 1), new Gemm.Mat(sw, 0, n, 1), null,
          new Gemm.Mat(so, fast.offset(), fast.stride(0), 1), false);
    }
    REF.matmul(x, w, ref, false);
    try {
      compare(fast, ref, boundRows(x, w, null), "sabotaged");
    } catch (AssertionError expected) {
      return;
    }
    fail("a product dropped from every element went unnoticed");
  }

  /** An [rows, cols] output inside rows of cols + 3 floats, pre-filled with a marker that must survive past each row. */
  private static Tensor wide(int rows, int cols) {
    Tensor t = Tensor.full(Shape.of(rows, cols + 3), DType.F32, FAST, 7.0);
    return t.view(Shape.of(rows, cols), new long[] {cols + 3, 1}, t.offset());
  }

  /** Per element of a·b (+ c): (K + 2)·2^-24·(Σ|a||b| + |c|) + 1e-30, the summation bound in the class comment. */
  private static double[][] boundRows(Tensor a, Tensor b, Tensor c) {
    int m = a.size(0), k = a.size(1), n = b.size(1);
    double[][] ha = host(a), hb = host(b), hc = c == null ? null : host(c);
    double[][] bound = new double[m][n];
    for (int i = 0; i < m; i++) {
      double[] row = bound[i];
      for (int p = 0; p < k; p++) {
        double x = Math.abs(ha[i][p]);
        for (int j = 0; j < n; j++) row[j] += x * Math.abs(hb[p][j]);
      }
      for (int j = 0; j < n; j++) row[j] = (k + 2) * 0x1p-24 * (row[j] + (hc == null ? 0 : Math.abs(hc[i][j]))) + 1e-30;
    }
    return bound;
  }

  /** A 2-D tensor's elements, read through its strides. */
  private static double[][] host(Tensor t) {
    double[][] h = new double[t.size(0)][t.size(1)];
    for (int i = 0; i < h.length; i++) for (int j = 0; j < h[i].length; j++) h[i][j] = at(t, i, j);
    return h;
  }

  private static double at(Tensor t, int i, int j) {
    return CpuBackend.segment(t).getAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED, t.offset() + i * t.stride(0) + j * t.stride(1));
  }

  private static void compare(Tensor fast, Tensor ref, double[][] bound, String what) {
    int m = fast.size(0), n = fast.size(1);
    for (int i = 0; i < m; i++) {
      for (int j = 0; j < n; j++) {
        double f = at(fast, i, j), r = at(ref, i, j);
        if (!(Math.abs(f - r) <= bound[i][j]))
          throw new AssertionError(what + ": element (" + i + ", " + j + ") is " + f + ", reference " + r + ", bound " + bound[i][j]);
      }
      if (fast.stride(0) > n) // the padding after each row is untouched
        for (int j = n; j < fast.stride(0) && i * fast.stride(0) + j < CpuBackend.segment(fast).byteSize() / 4 - fast.offset(); j++)
          assertTrue(CpuBackend.segment(fast).getAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED, fast.offset() + i * fast.stride(0) + j) == 7f,
              what + ": row " + i + " written past its end");
    }
  }

  private static Tensor rand(Random rnd, int rows, int cols) {
    float[] v = new float[rows * cols];
    for (int i = 0; i < v.length; i++) v[i] = (float) (2 * rnd.nextDouble() - 1);
    return Tensor.of(v, Shape.of(rows, cols), FAST);
  }
}
