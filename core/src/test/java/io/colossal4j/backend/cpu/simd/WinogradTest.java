package io.colossal4j.backend.cpu.simd;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.backend.Conv2dSpec;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The Winograd F(2×2, 3×3) forward convolution and both gradients against the double-precision reference, on
 * geometries that exercise its edges: output rows and columns of odd length (half-empty tiles), more tiles
 * along a row than one vector run (wo = 70: two runs of 32 tiles), Cout not a multiple of the micro-kernel's
 * 8 rows, odd Cin, asymmetric and zero padding.
 *
 * <p>Tolerance: 4× the direct convolution's bound, (K + 2)·u·Σ|x·w| with K = 9·Cin and u = 2^-24. Why 4: the
 * input and output transforms each add or subtract at most 4 terms per value along each of their two passes
 * (coefficients ±1), the filter transform at most 3 halved terms, so every transformed product and every
 * partial sum is bounded by a few times the same Σ|x·w|, each step adding one rounding; the largest
 * measured error on these cases is 2% of the direct bound (a worst-case bound, loose for random signs), so 4×
 * leaves room without hiding a wrong tap, which would miss by about one |x·w| term, hundreds of times the
 * tolerance.
 */
class WinogradTest {
  private record Case(int n, int cin, int h, int w, int cout, Conv2dSpec spec) {
    Shape xShape() { return Shape.of(n, cin, h, w); }

    Shape wShape() { return Shape.of(cout, cin, 3, 3); }

    Shape yShape() { return Shape.of(n, cout, spec.outH(h, 3), spec.outW(w, 3)); }
  }

  private static final Case[] CASES = {
      new Case(2, 16, 9, 17, 20, Conv2dSpec.of(1, 1, 1, 1)),
      new Case(3, 17, 12, 70, 16, Conv2dSpec.of(1, 1, 1, 1)),
      new Case(2, 16, 10, 20, 16, new Conv2dSpec(1, 1, 0, 2, 1, 0, 1, 1, 1)),
      new Case(2, 16, 11, 13, 24, Conv2dSpec.of(1, 0, 1, 1)),
      new Case(2, 64, 14, 14, 64, Conv2dSpec.of(1, 1, 1, 1)),
      new Case(2, 64, 34, 18, 64, Conv2dSpec.of(1, 1, 1, 1)),
  };

  @Test void matchesTheReferenceConvolution() {
    Random rnd = new Random(3);
    for (Case c : CASES)
      check(c, rnd, c.xShape(), c.wShape(), c.yShape(), (k, x, w, s, y) -> k.conv2d(x, w, s, y), 9.0 * c.cin(), Winograd::applies);
  }

  /**
   * The input gradient (the same kernel on gy, the filters flipped and transposed, padding 2 − p) against the
   * reference's, on the same geometries (gy shaped as each case's output) plus a "valid" convolution (its gradient
   * pads by 2); the same tolerance with K = 9·Cout, the gradient's reduction length.
   */
  @Test void theInputGradientMatchesTheReference() {
    Random rnd = new Random(4);
    for (Case c : withValid(2))
      check(c, rnd, c.yShape(), c.wShape(), c.xShape(), (k, gy, w, s, gx) -> k.conv2dBackwardInput(gy, w, s, gx), 9.0 * c.cout(),
          Winograd::appliesToInputGradient);
  }

  /**
   * The weight gradient (Gᵀ[(A dY Aᵀ) ⊙ (Bᵀ d B)]G summed over tiles and images) against the reference's, on the same
   * geometries and the valid convolution; the same tolerance with K = N·Ho·Wo, the gradient's reduction length. The
   * 64-channel 34 × 18 case is multiplied in three bands of tile rows (8, 8 and 1 of its 17), the last one partial.
   */
  @Test void theWeightGradientMatchesTheReference() {
    Random rnd = new Random(5);
    for (Case c : withValid(3))
      check(c, rnd, c.xShape(), c.yShape(), c.wShape(), (k, x, gy, s, gw) -> k.conv2dBackwardWeight(x, gy, s, gw),
          (double) c.n() * c.yShape().dim(2) * c.yShape().dim(3), Winograd::appliesToWeightGradient);
  }

  /** The cases, and a "valid" convolution (no padding) of n images. */
  private static Case[] withValid(int n) {
    Case[] cases = java.util.Arrays.copyOf(CASES, CASES.length + 1);
    cases[CASES.length] = new Case(n, 16, 12, 19, 24, Conv2dSpec.of(1, 0, 1, 1));
    return cases;
  }

  /** One of the three: out = op(a, b) by a backend's kernels. */
  private interface Conv { void run(io.colossal4j.backend.Kernels k, Tensor a, Tensor b, Conv2dSpec s, Tensor out); }

  /** Whether Winograd takes op(a, b) into out. */
  private interface Applies { boolean test(io.colossal4j.backend.cpu.CpuParallel par, Tensor a, Tensor b, Conv2dSpec s, Tensor out); }

  /**
   * op on random a and b (uniform in [−1, 1)) on the fast backend, which must take the Winograd path, against the
   * f64 reference within 4·(k + 2)·u·(op on |a| and |b|) element by element (the class comment says why).
   */
  private static void check(Case c, Random rnd, Shape as, Shape bs, Shape os, Conv op, double k, Applies applies) {
    float[] da = random(rnd, (int) as.numel()), db = random(rnd, (int) bs.numel());
    try (CpuBackend fast = CpuBackend.create(2)) {
      CpuBackend ref = CpuBackend.reference();
      Tensor a = Tensor.of(da, as, fast), b = Tensor.of(db, bs, fast), out = Tensor.full(os, DType.F32, fast, 7);
      assertTrue(applies.test(fast.parallel(), a, b, c.spec(), out), c + " should take the Winograd path");
      op.run(fast.kernels(), a, b, c.spec(), out);
      Tensor want = Tensor.empty(os, DType.F64, ref), bound = Tensor.empty(os, DType.F64, ref);
      op.run(ref.kernels(), Tensor.of(da, as, ref), Tensor.of(db, bs, ref), c.spec(), want);
      op.run(ref.kernels(), Tensor.of(abs(da), as, ref), Tensor.of(abs(db), bs, ref), c.spec(), bound);
      float[] got = out.toFloatArray();
      double[] w = want.toDoubleArray(), sum = bound.toDoubleArray();
      double u = 0x1p-24;
      for (int i = 0; i < got.length; i++) {
        double tol = 4 * (k + 2) * u * sum[i];
        assertTrue(Math.abs(got[i] - w[i]) <= tol, c + " at " + i + ": " + got[i] + " vs " + w[i] + " (tolerance " + tol + ")");
      }
    }
  }

  private static float[] random(Random rnd, int n) {
    float[] d = new float[n];
    for (int i = 0; i < n; i++) d[i] = rnd.nextFloat() * 2 - 1;
    return d;
  }

  private static float[] abs(float[] d) {
    float[] a = new float[d.length];
    for (int i = 0; i < d.length; i++) a[i] = Math.abs(d[i]);
    return a;
  }
}
