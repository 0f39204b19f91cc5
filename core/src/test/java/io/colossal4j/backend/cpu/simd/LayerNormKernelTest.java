package io.colossal4j.backend.cpu.simd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The fast layer norm kernels ({@link LayerNormKernel}, {@link LayerNormBackward}) against the scalar reference
 * (double math) on row lengths around every loop boundary of the kernels: below one vector, one vector ± 1,
 * the four-vector main loop ± 1, main loop plus leftover whole vectors plus a masked tail, and the benchmark's
 * 1024; row counts that give one or many row chunks and fewer or more rows than backward tasks; every
 * combination of weight and bias. Also: accuracy when |mean| ≫ std, results bit-identical on 1, 2 and 3
 * threads, and an empty input.
 */
class LayerNormKernelTest {
  private static final double U = 0x1p-24;
  private static final int L = RowOps.L;

  /** Affine parameters present: weight, bias. */
  private record Affine(boolean w, boolean b) {}

  private static final Affine[] AFFINES = {new Affine(true, true), new Affine(false, false), new Affine(true, false), new Affine(false, true)};

  @Test void forwardAndBackwardMatchTheReferenceAroundEveryLoopBoundary() {
    int[] lengths = {1, 3, L - 1, L, L + 1, 4 * L - 1, 4 * L, 4 * L + 1, 6 * L + 3, 1000, 1024};
    int[] rowCounts = {1, 5, 40};
    Random rnd = new Random(11);
    try (CpuBackend fast = CpuBackend.create(2)) {
      CpuBackend ref = CpuBackend.reference();
      int k = 0;
      for (int n : lengths)
        for (int rows : rowCounts) check(fast, ref, rnd, rows, n, AFFINES[k++ % AFFINES.length]);
      check(fast, ref, rnd, 300, 1000, AFFINES[0]); // 19 row chunks of 16, 8 backward tasks of 37 or 38 rows
    }
  }

  /**
   * Tolerances as in the conformance suite, for x in [−3, 5), w in [0.5, 1.5), b and gy in [−1, 1): the mean and
   * the centred sum of squares are f32 sums of n terms, each within (n + 8)·u·Σ|terms| of exact even summed
   * one by one (ours sums 4·L lanes and then a tree, far tighter); y = x̂·w + b inherits that relative error,
   * with |x̂| ≤ √n folded into the factor 4·8. The backward's two row sums and the products with x̂ take 4×
   * that; gw and gb add rows terms, so their bound grows with rows + n.
   */
  private static void check(CpuBackend fast, CpuBackend ref, Random rnd, int rows, int n, Affine affine) {
    float[] x = uniform(rnd, rows * n, -3, 5), w = uniform(rnd, n, 0.5, 1.5), b = uniform(rnd, n, -1, 1), gy = uniform(rnd, rows * n, -1, 1);
    Result got = run(fast, x, affine.w ? w : null, affine.b ? b : null, gy, rows, n);
    Result want = run(ref, x, affine.w ? w : null, affine.b ? b : null, gy, rows, n);
    String what = "layer norm [" + rows + ", " + n + "] " + affine;
    double tol = 4 * (n + 8) * U * 8, tolRows = 4 * (rows + n + 8) * U * 8 * rows;
    assertClose(what + " y", got.y, want.y, tol, true);
    assertClose(what + " mean", got.mean, want.mean, tol, false);
    assertClose(what + " rstd", got.rstd, want.rstd, tol * want.rstd[0], false);
    assertClose(what + " gx", got.gx, want.gx, 4 * tol, true);
    assertClose(what + " gw", got.gw, want.gw, tolRows, false);
    assertClose(what + " gb", got.gb, want.gb, tolRows, false);
  }

  /**
   * Rows of mean 1000 and std ≈ 0.58: a one-pass E[x²] − E[x]² in f32 would lose every digit of the variance
   * (u·1000² ≈ 0.06 against 0.33). Two passes: the centred terms x − mean are exact (Sterbenz), so rstd is off by
   * (δmean/std)² plus the rounding of a length-n sum, under 1e-4 relative. y inherits δmean·rstd·|w| with
   * |δmean| ≤ (n/16 + 8)·u·1001 for vectors of four or more lanes (sums of n/(4·L) terms, then a tree).
   */
  @Test void staysAccurateWhenTheMeanDwarfsTheSpread() {
    int rows = 24, n = 1000;
    Random rnd = new Random(5);
    float[] x = uniform(rnd, rows * n, 999, 1001), w = uniform(rnd, n, 0.5, 1.5), b = uniform(rnd, n, -1, 1), gy = uniform(rnd, rows * n, -1, 1);
    try (CpuBackend fast = CpuBackend.create(2)) {
      Result got = run(fast, x, w, b, gy, rows, n), want = run(CpuBackend.reference(), x, w, b, gy, rows, n);
      for (int r = 0; r < rows; r++) {
        double rel = Math.abs(got.rstd[r] - want.rstd[r]) / want.rstd[r];
        assertTrue(rel <= 1e-4, "rstd of row " + r + ": " + got.rstd[r] + " vs " + want.rstd[r] + " (relative error " + rel + ", want <= 1e-4)");
      }
      double meanErr = (n / 16.0 + 8) * U * 1001;
      assertClose("y, mean 1000", got.y, want.y, meanErr * want.rstd[0] * 1.5 * 1.01 + 4 * (n + 8) * U * 8, false);
    }
  }

  /**
   * Statistics on rows built to break a shifted one-pass variance (Σ(x − k)²/n − (mean − k)² with k taken from
   * the row's first vector, a form this kernel tried and dropped; a regression to any such form must fail here):
   * rows of mean ≈ 1000 and std ≈ 0.58 whose first vector sits t above the rest, t from 0 to 100, and a ramp.
   * rstd within 1e-5 relative of the double-precision reference (f32 lane sums of n/(4·L) terms and a tree,
   * about 20·u = 1.2e-6 relative for n = 1000) and the mean within the worst case of those sums,
   * (n/(4·L) + 8)·u·|mean|. With n = 65536 a first
   * vector t = 100 away would cancel 12 of the 24 bits of that one-pass form (checked: it misses by 24×).
   */
  @Test void statisticsStayAccurateWhereverTheFirstVectorSits() {
    checkShifted(1000, new double[] {0, 0.3, 0.6, 0.9, 1.5, 5, 100, Double.NaN}); // NaN: the ramp
    checkShifted(1 << 16, new double[] {0.3, 100, Double.NaN});
  }

  private static void checkShifted(int n, double[] shifts) {
    int rows = shifts.length;
    Random rnd = new Random(8);
    float[] x = uniform(rnd, rows * n, 999, 1001), gy = new float[rows * n];
    for (int r = 0; r < rows; r++)
      for (int j = 0; j < n; j++)
        if (Double.isNaN(shifts[r])) x[r * n + j] = 1000 + 0.01f * j / n;
        else if (j < L) x[r * n + j] = (float) (1000 + shifts[r]);
    try (CpuBackend fast = CpuBackend.create(2)) {
      Result got = run(fast, x, null, null, gy, rows, n), want = run(CpuBackend.reference(), x, null, null, gy, rows, n);
      for (int r = 0; r < rows; r++) {
        String row = "row " + r + " of " + n + " (first vector +" + shifts[r] + ")";
        double rel = Math.abs(got.rstd[r] - want.rstd[r]) / want.rstd[r];
        assertTrue(rel <= 1e-5, "rstd of " + row + ": " + got.rstd[r] + " vs " + want.rstd[r] + " (relative error " + rel + ", want <= 1e-5)");
        double meanTol = (n / (4.0 * L) + 8) * U * Math.abs(want.mean[r]); // the worst case of the lane sums of x
        assertTrue(Math.abs(got.mean[r] - want.mean[r]) <= meanTol, "mean of " + row + ": " + got.mean[r] + " vs " + want.mean[r]);
      }
    }
  }

  /** Row chunks and backward tasks are cut by the row count alone, so the thread count never changes a bit. */
  @Test void bitIdenticalOnOneTwoAndThreeThreads() {
    int rows = 150, n = 1000;
    Random rnd = new Random(3);
    float[] x = uniform(rnd, rows * n, -3, 5), w = uniform(rnd, n, 0.5, 1.5), b = uniform(rnd, n, -1, 1), gy = uniform(rnd, rows * n, -1, 1);
    Result one;
    try (CpuBackend cpu = CpuBackend.create(1)) {
      one = run(cpu, x, w, b, gy, rows, n);
    }
    for (int threads : new int[] {2, 3})
      try (CpuBackend cpu = CpuBackend.create(threads)) {
        Result r = run(cpu, x, w, b, gy, rows, n);
        String on = " on " + threads + " threads vs 1";
        assertArrayEquals(one.y, r.y, "y" + on);
        assertArrayEquals(one.mean, r.mean, "mean" + on);
        assertArrayEquals(one.rstd, r.rstd, "rstd" + on);
        assertArrayEquals(one.gx, r.gx, "gx" + on);
        assertArrayEquals(one.gw, r.gw, "gw" + on);
        assertArrayEquals(one.gb, r.gb, "gb" + on);
      }
  }

  /** No rows: nothing to write forward; the parameter gradients are sums over no rows, zero. */
  @Test void emptyInputGivesZeroParameterGradients() {
    try (CpuBackend cpu = CpuBackend.create(2)) {
      Result r = run(cpu, new float[0], new float[] {1, 2, 3}, new float[] {4, 5, 6}, new float[0], 0, 3);
      assertArrayEquals(new float[3], r.gw, "gw");
      assertArrayEquals(new float[3], r.gb, "gb");
    }
  }

  private record Result(float[] y, float[] mean, float[] rstd, float[] gx, float[] gw, float[] gb) {}

  /** Forward, then backward with the forward's own statistics; w and b may be null. */
  private static Result run(CpuBackend cpu, float[] x, float[] w, float[] b, float[] gy, int rows, int n) {
    Shape s = Shape.of(rows, n), row = Shape.of(n), stat = Shape.of(rows);
    Tensor xt = Tensor.of(x, s, cpu), gyt = Tensor.of(gy, s, cpu);
    Tensor wt = w == null ? null : Tensor.of(w, row, cpu), bt = b == null ? null : Tensor.of(b, row, cpu);
    Tensor y = Tensor.empty(s, DType.F32, cpu), mean = Tensor.empty(stat, DType.F32, cpu), rstd = Tensor.empty(stat, DType.F32, cpu);
    cpu.kernels().layerNorm(xt, wt, bt, 1e-5, y, mean, rstd);
    Tensor gx = Tensor.empty(s, DType.F32, cpu), gw = Tensor.full(row, DType.F32, cpu, 7), gb = Tensor.full(row, DType.F32, cpu, 7);
    cpu.kernels().layerNormBackward(gyt, xt, wt, mean, rstd, gx, gw, gb);
    return new Result(y.toFloatArray(), mean.toFloatArray(), rstd.toFloatArray(), gx.toFloatArray(), gw.toFloatArray(), gb.toFloatArray());
  }

  private static float[] uniform(Random rnd, int count, double lo, double hi) {
    float[] d = new float[count];
    for (int i = 0; i < count; i++) d[i] = (float) (lo + (hi - lo) * rnd.nextDouble());
    return d;
  }

  /** |got − want| ≤ tol, or ≤ tol·(1 + |want|) when relative. */
  private static void assertClose(String what, float[] got, float[] want, double tol, boolean relative) {
    for (int i = 0; i < want.length; i++) {
      double bound = relative ? tol * (1 + Math.abs(want[i])) : tol;
      double err = Math.abs((double) got[i] - want[i]);
      assertTrue(err <= bound, what + " at " + i + ": " + got[i] + " vs " + want[i] + " (error " + err + ", bound " + bound + ")");
    }
  }
}
