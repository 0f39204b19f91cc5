package io.colossal4j.ops;

/**
 * One-dimensional resampling weights, as row-major [out, in] matrices, following PyTorch's upsample
 * kernels exactly (source-index mapping, border handling, cubic coefficients). Interpolating an image is
 * applying one matrix to each spatial dim ({@link Resize#separable}).
 */
final class Interpolation {
  private Interpolation() {}

  /** Keys' cubic-convolution parameter used by PyTorch's (and OpenCV's) bicubic. */
  static final double CUBIC_A = -0.75;

  static double[] weights(Resize.Mode mode, int in, int out, boolean alignCorners) {
    double[] m = new double[out * in];
    for (int i = 0; i < out; i++) {
      switch (mode) {
        case NEAREST -> m[i * in + nearest(i, in, out)] = 1;
        case BILINEAR -> linearRow(m, i, in, sourceIndex(i, in, out, alignCorners, false));
        case BICUBIC -> cubicRow(m, i, in, sourceIndex(i, in, out, alignCorners, true));
      }
    }
    return m;
  }

  /**
   * The real-valued source coordinate of output index {@code dst}. Aligned corners map first to first and
   * last to last; otherwise pixel centres map, and linear (not cubic) clamps negative coordinates to 0.
   */
  static double sourceIndex(int dst, int in, int out, boolean alignCorners, boolean cubic) {
    if (alignCorners) return out > 1 ? dst * (double) (in - 1) / (out - 1) : 0;
    double src = (dst + 0.5) * ((double) in / out) - 0.5;
    return !cubic && src < 0 ? 0 : src;
  }

  /** PyTorch's nearest index: floor(dst * in/out) with the scale and product in float, as its kernels. */
  static int nearest(int dst, int in, int out) {
    if (in == out) return dst;
    if (out == 2 * in) return dst >> 1;
    float scale = (float) in / out;
    return Math.min((int) Math.floor(dst * scale), in - 1);
  }

  /** Two taps floor(src) and the next (clamped at the last pixel), weighted by distance. */
  private static void linearRow(double[] m, int row, int in, double src) {
    int i0 = Math.min((int) Math.floor(src), in - 1);
    double t = Math.min(Math.max(src - i0, 0), 1);
    int i1 = i0 < in - 1 ? i0 + 1 : i0;
    m[row * in + i0] += 1 - t;
    m[row * in + i1] += t;
  }

  /** Four taps floor(src)-1 .. floor(src)+2, indices clamped to the image (border replication). */
  private static void cubicRow(double[] m, int row, int in, double src) {
    int i0 = (int) Math.floor(src);
    double t = src - i0;
    double[] c = {cubicFar(t + 1), cubicNear(t), cubicNear(1 - t), cubicFar(2 - t)};
    for (int k = 0; k < 4; k++) {
      int idx = Math.min(Math.max(i0 - 1 + k, 0), in - 1);
      m[row * in + idx] += c[k];
    }
  }

  /** Kernel for |x| <= 1: (A+2)|x|^3 - (A+3)|x|^2 + 1. */
  static double cubicNear(double x) { return ((CUBIC_A + 2) * x - (CUBIC_A + 3)) * x * x + 1; }

  /** Kernel for 1 < |x| < 2: A|x|^3 - 5A|x|^2 + 8A|x| - 4A. */
  static double cubicFar(double x) { return ((CUBIC_A * x - 5 * CUBIC_A) * x + 8 * CUBIC_A) * x - 4 * CUBIC_A; }
}
