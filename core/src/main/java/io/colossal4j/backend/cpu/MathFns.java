package io.colossal4j.backend.cpu;

/** Double-precision scalar functions the reference kernels need and {@link Math} lacks. */
public final class MathFns {
  private MathFns() {}

  private static final double TWO_OVER_SQRT_PI = 1.1283791670955126;
  private static final double INV_SQRT_2 = 0.7071067811865476;
  private static final double INV_SQRT_2PI = 0.3989422804014327;
  private static final double SQRT_2_OVER_PI = 0.7978845608028654;

  /**
   * erf to about 1e-14 relative: the Maclaurin series for |x| < 2.5 and the continued fraction of erfc
   * beyond (evaluated from the tail, 60 terms), both well inside their convergence regions there.
   */
  public static double erf(double x) {
    if (Double.isNaN(x)) return x;
    double ax = Math.abs(x);
    if (ax < 2.5) {
      double x2 = x * x, term = x, sum = x;
      for (int n = 1; n < 80; n++) {
        term *= -x2 / n;
        double add = term / (2 * n + 1);
        sum += add;
        if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
      }
      return TWO_OVER_SQRT_PI * sum;
    }
    if (ax > 6) return Math.signum(x);
    // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + ...)))))
    double f = ax;
    for (int k = 60; k >= 1; k--) f = ax + (k / 2.0) / f;
    double erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
    return Math.signum(x) * (1 - erfc);
  }

  public static double gelu(double x) { return 0.5 * x * (1 + erf(x * INV_SQRT_2)); }

  public static double geluGrad(double x) {
    return 0.5 * (1 + erf(x * INV_SQRT_2)) + x * INV_SQRT_2PI * Math.exp(-0.5 * x * x);
  }

  public static double geluTanh(double x) {
    return 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)));
  }

  public static double geluTanhGrad(double x) {
    double u = SQRT_2_OVER_PI * (x + 0.044715 * x * x * x);
    double t = Math.tanh(u);
    double du = SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x);
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du;
  }

  public static double sigmoid(double x) {
    return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
  }

  public static double silu(double x) { return x * sigmoid(x); }

  public static double siluGrad(double x) {
    double s = sigmoid(x);
    return s * (1 + x * (1 - s));
  }
}
