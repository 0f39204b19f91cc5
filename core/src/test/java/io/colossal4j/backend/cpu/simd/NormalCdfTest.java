package io.colossal4j.backend.cpu.simd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.backend.BinaryOp;
import io.colossal4j.backend.UnaryOp;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * GELU (exact), its derivative and erf of the fast kernels ({@link VMath#normalCdf}, {@link VMath#erf}, run
 * through {@code kernels().unary/binary} on 2 threads, so the row splitting and the scalar-copied tails are
 * exercised too) against double-precision references written here: erfc by its Maclaurin series below 2.5
 * and its continued fraction above, so that Φ(x) = erfc(−x/√2)/2 keeps ~1e-15 relative accuracy in the
 * whole left tail (the reference kernels compute 1 + erf(x/√2), which cancels there). Inputs: every 2^-12 in
 * [−16, 16] (a 1/64 grid is contained in it) and the special values. ulp = the f32 spacing at the exact result.
 *
 * <p>Bounds (VMath's contract): GELU ≤ 6 ulp and erf ≤ 4 ulp wherever the result is a normal f32; below
 * x = −13.22 GELU is 0 and its exact value is under 13.3·3.4e-40 in magnitude there (past −13.22 the kernel's
 * e^{−x²/2} leaves the normal range), and above it, down to −13.0, Φ is subnormal: 1.2e-44 absolute is allowed
 * on top of the ulps there ({@link #GELU_SUBNORMAL_PHI}). The derivative Φ(x) + x·φ(x) is a difference of two terms for x &lt; 0
 * ({@code x·φ} ≈ −Φ in the tail), so it is held to 6 ulp of the result plus 4·2^-24·(Φ + |x|·φ), the f32
 * rounding of the terms it cancels (the result keeps no more relative accuracy than that), plus 6.3e-38 absolute
 * where |x| &gt; 13.22 (see {@link #FLUSHED_X_PDF}).
 */
class NormalCdfTest {
  private static final double U = 0x1p-24;
  /**
   * The kernels' e^{−x²/2} is 0 where it would be subnormal (x²/2 &gt; 87.34, |x| &gt; 13.22), so the derivative loses
   * x·φ(x) there: at most 13.3·2^-126/√(2π) = 6.3e-38 absolute.
   */
  private static final double FLUSHED_X_PDF = 6.3e-38;
  /** Between x = −13.22 and −13.0 Φ is subnormal, rounded to a multiple of 2^-149: GELU = x·Φ can be off by 13.3·2^-150. */
  private static final double GELU_SUBNORMAL_PHI = 1.2e-44;

  /** erf(a) for 0 ≤ a &lt; 2.5 by its Maclaurin series (alternating, terms below 2.5^(2n+1)/n!: no harmful cancellation). */
  private static double erfSeries(double a) {
    double a2 = a * a, term = a, sum = a;
    for (int n = 1; n < 200; n++) {
      term *= -a2 / n;
      double add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-18 * Math.abs(sum)) break;
    }
    return 2 / Math.sqrt(Math.PI) * sum;
  }

  /** erfc(a) for a ≥ 0, to about 1e-14 relative. */
  static double erfc(double a) {
    if (a < 2.5) return 1 - erfSeries(a);           // erfc ≥ 4e-4 here: the subtraction loses < 4 digits of 16
    double f = a;                                   // erfc(a) = e^{−a²}/√π / (a + (1/2)/(a + 1/(a + (3/2)/(a + ...))))
    for (int k = 200; k >= 1; k--) f = a + (k / 2.0) / f;
    return Math.exp(-a * a) / Math.sqrt(Math.PI) / f;
  }

  static double phi(double x) { return x < 0 ? erfc(-x / Math.sqrt(2)) / 2 : 1 - erfc(x / Math.sqrt(2)) / 2; }

  static double erf(double x) {
    double a = Math.abs(x);
    return Math.copySign(a < 2.5 ? erfSeries(a) : 1 - erfc(a), x);
  }

  private static float[] grid() {
    int n = 32 * 4096 + 1;
    float[] x = new float[n];
    for (int i = 0; i < n; i++) x[i] = -16f + i / 4096f;   // exact in f32
    return x;
  }

  private static float[] run(UnaryOp op, float[] x) {
    try (CpuBackend cpu = CpuBackend.create(2)) {
      Tensor t = Tensor.of(x, Shape.of(x.length), cpu), o = Tensor.empty(Shape.of(x.length), DType.F32, cpu);
      cpu.kernels().unary(op, t, o);
      return o.toFloatArray();
    }
  }

  private static float[] runBackward(float[] x, float[] g) {
    try (CpuBackend cpu = CpuBackend.create(2)) {
      Tensor t = Tensor.of(x, Shape.of(x.length), cpu), gt = Tensor.of(g, Shape.of(x.length), cpu);
      Tensor o = Tensor.empty(Shape.of(x.length), DType.F32, cpu);
      cpu.kernels().binary(BinaryOp.GELU_BACKWARD, t, gt, o);
      return o.toFloatArray();
    }
  }

  /** Largest error in ulp of the exact value over the points where it is a normal f32. */
  private static double worstUlps(String what, float[] x, float[] got, java.util.function.DoubleUnaryOperator exact, double tailFloor,
                                  double subnormalFloor) {
    double worst = 0;
    float at = 0;
    for (int i = 0; i < x.length; i++) {
      double e = exact.applyAsDouble(x[i]);
      if (Math.abs(e) >= Float.MIN_NORMAL) {
        double ulps = Math.max(0, Math.abs(got[i] - e) - subnormalFloor) / Math.ulp((float) Math.abs(e));
        if (ulps > worst) { worst = ulps; at = x[i]; }
      } else {
        assertTrue(Math.abs(got[i] - e) <= tailFloor, what + "(" + x[i] + ") = " + got[i] + ", exact " + e);
      }
    }
    System.out.printf("%s: worst %.2f ulp at x = %s%n", what, worst, at);
    return worst;
  }

  @Test void geluWithinSixUlpOnTheDenseGrid() {
    float[] x = grid();
    float[] y = run(UnaryOp.GELU, x);
    assertTrue(worstUlps("gelu", x, y, v -> v * phi(v), 5e-39, GELU_SUBNORMAL_PHI) <= 6);
    for (int i = 0; i < x.length; i++) if (x[i] < -13.25f) assertEquals(0f, Math.abs(y[i]), "gelu(" + x[i] + ") is flushed to 0");
  }

  @Test void erfWithinFourUlpOnTheDenseGrid() {
    float[] x = grid();
    assertTrue(worstUlps("erf", x, run(UnaryOp.ERF, x), NormalCdfTest::erf, 0, 0) <= 4);
  }

  @Test void geluDerivativeWithinItsCancellationBound() {
    float[] x = grid(), g = new float[x.length];
    for (int i = 0; i < g.length; i++) g[i] = 1f - 2f * (i % 3) / 3;   // 1, 1/3 and −1/3: scaling by gy is one more rounding
    float[] got = runBackward(x, g);
    double worst = 0;
    float at = 0;
    for (int i = 0; i < x.length; i++) {
      double pdf = Math.exp(-0.5 * (double) x[i] * x[i]) / Math.sqrt(2 * Math.PI);
      double p = phi(x[i]), exact = (p + x[i] * pdf) * g[i];
      double scale = (p + Math.abs(x[i]) * pdf) * Math.abs(g[i]);
      double err = Math.abs(got[i] - exact), allowed = 6 * Math.ulp((float) Math.abs(exact)) + 4 * U * scale + FLUSHED_X_PDF;
      if (err / allowed > worst) { worst = err / allowed; at = x[i]; }
      assertTrue(err <= allowed, "gelu'(" + x[i] + ")·" + g[i] + " = " + got[i] + ", exact " + exact + ", allowed error " + allowed);
    }
    System.out.printf("gelu backward: worst %.2f of the allowed error at x = %s%n", worst, at);
  }

  @Test void specialValues() {
    float sub = Float.MIN_VALUE * 3, bigSub = Float.MIN_NORMAL / 2;
    float[] x = {0f, -0f, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.NaN, sub, -sub, bigSub, -bigSub,
        Float.MIN_NORMAL, -Float.MIN_NORMAL, 1e30f, -1e30f, Float.MAX_VALUE, -Float.MAX_VALUE, -13.2f, -13.3f};
    float[] gelu = run(UnaryOp.GELU, x), erf = run(UnaryOp.ERF, x);
    assertEquals(0f, gelu[0]);
    assertEquals(0f, Math.abs(gelu[1]));
    assertEquals(Float.POSITIVE_INFINITY, gelu[2]);
    assertTrue(Float.isNaN(gelu[3]), "gelu(-inf) = -inf·Φ(-inf) = -inf·0 is NaN, as in the reference and PyTorch, got " + gelu[3]);
    assertTrue(Float.isNaN(gelu[4]) && Float.isNaN(erf[4]), "NaN in, NaN out");
    // x·Φ(x) = x/2 to within one subnormal step: R(t) at u = 0 is 0.5 to 2 ulp, not exactly, and x·e·R rounds once
    // more; the exact value −1.5·2^-149 of the first input is a tie
    for (int i = 5; i <= 10; i++) assertEquals(x[i] / 2, gelu[i], Float.MIN_VALUE, "gelu(" + x[i] + ") = x/2");
    assertEquals(1e30f, gelu[11]);
    assertEquals(0f, Math.abs(gelu[12]));
    assertEquals(Float.MAX_VALUE, gelu[13]);
    assertEquals(0f, Math.abs(gelu[14]));
    assertEquals((float) (-13.2 * phi(-13.2)), gelu[15], 6 * Math.ulp(gelu[15]) + 5e-39);
    assertEquals(0f, Math.abs(gelu[16]));
    assertEquals(0f, erf[0]);
    assertEquals(-0f, erf[1]);
    assertEquals(1f, erf[2]);
    assertEquals(-1f, erf[3]);
    for (int i = 5; i <= 10; i++) assertEquals((float) (2 / Math.sqrt(Math.PI) * x[i]), erf[i], Math.ulp(erf[i]) * 4, "erf(" + x[i] + ")");
    assertEquals(1f, erf[11]);
    assertEquals(-1f, erf[14]);
    float[] grads = runBackward(x, filled(x.length, 1f));
    assertEquals(0.5f, grads[0]);
    assertTrue(Float.isNaN(grads[2]), "gelu'(inf) = 1 + inf·0 is NaN, as in the reference kernels");
    assertEquals(1f, grads[11]);
    assertTrue(Float.isNaN(grads[4]));
  }

  private static float[] filled(int n, float v) {
    float[] a = new float[n];
    Arrays.fill(a, v);
    return a;
  }
}
