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
  private record Case(int n, int cin, int h, int w, int cout, Conv2dSpec spec) {}

  private static final Case[] CASES = {
      new Case(2, 16, 9, 17, 20, Conv2dSpec.of(1, 1, 1, 1)),
      new Case(3, 17, 12, 70, 16, Conv2dSpec.of(1, 1, 1, 1)),
      new Case(2, 16, 10, 20, 16, new Conv2dSpec(1, 1, 0, 2, 1, 0, 1, 1, 1)),
      new Case(2, 16, 11, 13, 24, Conv2dSpec.of(1, 0, 1, 1)),
      new Case(2, 64, 14, 14, 64, Conv2dSpec.of(1, 1, 1, 1)),
  };

  @Test void matchesTheReferenceConvolution() {
    Random rnd = new Random(3);
    try (CpuBackend fast = CpuBackend.create(2)) {
      CpuBackend ref = CpuBackend.reference();
      for (Case c : CASES) {
        float[] dx = random(rnd, c.n() * c.cin() * c.h() * c.w()), dw = random(rnd, c.cout() * c.cin() * 9);
        Shape xs = Shape.of(c.n(), c.cin(), c.h(), c.w()), ws = Shape.of(c.cout(), c.cin(), 3, 3);
        Shape ys = Shape.of(c.n(), c.cout(), c.spec().outH(c.h(), 3), c.spec().outW(c.w(), 3));
        Tensor x = Tensor.of(dx, xs, fast), w = Tensor.of(dw, ws, fast), y = Tensor.empty(ys, DType.F32, fast);
        assertTrue(Winograd.applies(fast.parallel(), x, w, c.spec(), y), c + " should take the Winograd path");
        fast.kernels().conv2d(x, w, c.spec(), y);
        Tensor yr = Tensor.empty(ys, DType.F64, ref), bound = Tensor.empty(ys, DType.F64, ref);
        ref.kernels().conv2d(Tensor.of(dx, xs, ref), Tensor.of(dw, ws, ref), c.spec(), yr);
        ref.kernels().conv2d(Tensor.of(abs(dx), xs, ref), Tensor.of(abs(dw), ws, ref), c.spec(), bound);
        float[] got = y.toFloatArray();
        double[] want = yr.toDoubleArray(), sum = bound.toDoubleArray();
        double u = 0x1p-24, k = 9.0 * c.cin();
        for (int i = 0; i < got.length; i++) {
          double tol = 4 * (k + 2) * u * sum[i];
          assertTrue(Math.abs(got[i] - want[i]) <= tol, c + " at " + i + ": " + got[i] + " vs " + want[i] + " (tolerance " + tol + ")");
        }
      }
    }
  }

  /**
   * The input gradient (the same kernel on gy, the filters flipped and transposed, padding 2 − p) against the
   * reference's, on the same geometries (gy shaped as each case's output) plus a "valid" convolution (its gradient
   * pads by 2); the same tolerance with K = 9·Cout, the gradient's reduction length.
   */
  @Test void theInputGradientMatchesTheReference() {
    Random rnd = new Random(4);
    Case[] cases = java.util.Arrays.copyOf(CASES, CASES.length + 1);
    cases[CASES.length] = new Case(2, 16, 12, 19, 24, Conv2dSpec.of(1, 0, 1, 1));
    try (CpuBackend fast = CpuBackend.create(2)) {
      CpuBackend ref = CpuBackend.reference();
      for (Case c : cases) {
        Shape xs = Shape.of(c.n(), c.cin(), c.h(), c.w()), ws = Shape.of(c.cout(), c.cin(), 3, 3);
        Shape ys = Shape.of(c.n(), c.cout(), c.spec().outH(c.h(), 3), c.spec().outW(c.w(), 3));
        float[] dg = random(rnd, (int) ys.numel()), dw = random(rnd, (int) ws.numel());
        Tensor gy = Tensor.of(dg, ys, fast), w = Tensor.of(dw, ws, fast), gx = Tensor.empty(xs, DType.F32, fast);
        assertTrue(Winograd.appliesToInputGradient(fast.parallel(), gy, w, c.spec(), gx), c + " should take the Winograd path");
        fast.kernels().conv2dBackwardInput(gy, w, c.spec(), gx);
        Tensor want = Tensor.empty(xs, DType.F64, ref), bound = Tensor.empty(xs, DType.F64, ref);
        ref.kernels().conv2dBackwardInput(Tensor.of(dg, ys, ref), Tensor.of(dw, ws, ref), c.spec(), want);
        ref.kernels().conv2dBackwardInput(Tensor.of(abs(dg), ys, ref), Tensor.of(abs(dw), ws, ref), c.spec(), bound);
        float[] got = gx.toFloatArray();
        double[] w64 = want.toDoubleArray(), sum = bound.toDoubleArray();
        double u = 0x1p-24, k = 9.0 * c.cout();
        for (int i = 0; i < got.length; i++) {
          double tol = 4 * (k + 2) * u * sum[i];
          assertTrue(Math.abs(got[i] - w64[i]) <= tol, c + " at " + i + ": " + got[i] + " vs " + w64[i] + " (tolerance " + tol + ")");
        }
      }
    }
  }

  /**
   * The weight gradient (Gᵀ[(A dY Aᵀ) ⊙ (Bᵀ d B)]G summed over tiles and images) against the reference's, on the same
   * geometries and the valid convolution; the same tolerance with K = N·Ho·Wo, the gradient's reduction length.
   */
  @Test void theWeightGradientMatchesTheReference() {
    Random rnd = new Random(5);
    Case[] cases = java.util.Arrays.copyOf(CASES, CASES.length + 1);
    cases[CASES.length] = new Case(3, 16, 12, 19, 24, Conv2dSpec.of(1, 0, 1, 1));
    try (CpuBackend fast = CpuBackend.create(2)) {
      CpuBackend ref = CpuBackend.reference();
      for (Case c : cases) {
        Shape xs = Shape.of(c.n(), c.cin(), c.h(), c.w()), ws = Shape.of(c.cout(), c.cin(), 3, 3);
        Shape ys = Shape.of(c.n(), c.cout(), c.spec().outH(c.h(), 3), c.spec().outW(c.w(), 3));
        float[] dx = random(rnd, (int) xs.numel()), dg = random(rnd, (int) ys.numel());
        Tensor x = Tensor.of(dx, xs, fast), gy = Tensor.of(dg, ys, fast), gw = Tensor.full(ws, DType.F32, fast, 7);
        assertTrue(Winograd.appliesToWeightGradient(fast.parallel(), x, gy, c.spec(), gw), c + " should take the Winograd path");
        fast.kernels().conv2dBackwardWeight(x, gy, c.spec(), gw);
        Tensor want = Tensor.empty(ws, DType.F64, ref), bound = Tensor.empty(ws, DType.F64, ref);
        ref.kernels().conv2dBackwardWeight(Tensor.of(dx, xs, ref), Tensor.of(dg, ys, ref), c.spec(), want);
        ref.kernels().conv2dBackwardWeight(Tensor.of(abs(dx), xs, ref), Tensor.of(abs(dg), ys, ref), c.spec(), bound);
        float[] got = gw.toFloatArray();
        double[] w64 = want.toDoubleArray(), sum = bound.toDoubleArray();
        double u = 0x1p-24, k = (double) c.n() * ys.dim(2) * ys.dim(3);
        for (int i = 0; i < got.length; i++) {
          double tol = 4 * (k + 2) * u * sum[i];
          assertTrue(Math.abs(got[i] - w64[i]) <= tol, c + " at " + i + ": " + got[i] + " vs " + w64[i] + " (tolerance " + tol + ")");
        }
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
