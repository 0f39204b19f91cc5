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
  static double cubicNear(double x) { return cubicNear(x, CUBIC_A); }

  /** Kernel for 1 < |x| < 2: A|x|^3 - 5A|x|^2 + 8A|x| - 4A. */
  static double cubicFar(double x) { return cubicFar(x, CUBIC_A); }

  private static double cubicNear(double x, double a) { return ((a + 2) * x - (a + 3)) * x * x + 1; }

  private static double cubicFar(double x, double a) { return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a; }

  // ------------------------------------------------------------- antialiased (PyTorch's antialias=True)

  /** The cubic parameter of PyTorch's antialiased bicubic, which follows Pillow rather than OpenCV. */
  static final double AA_CUBIC_A = -0.5;

  /**
   * Weights of F.interpolate(..., antialias=True) for BILINEAR or BICUBIC: when downsampling by a scale s > 1
   * the filter is stretched by s (support 1 or 2 times s), so every input pixel contributes, as a box-like
   * low-pass; when upsampling it is the plain triangle or cubic (A = -0.5) filter. Taps outside the input are
   * dropped and each row is renormalised to sum 1 (no border replication). align_corners only changes the
   * scale to (in-1)/(out-1); the filter stays centred on (dst + 0.5) * scale, as PyTorch does.
   */
  static double[] antialiasedWeights(Resize.Mode mode, int in, int out, boolean alignCorners) {
    double halfWidth = switch (mode) {
      case BILINEAR -> 1;
      case BICUBIC -> 2;
      case NEAREST -> throw new IllegalArgumentException("antialiasing applies to BILINEAR and BICUBIC, not NEAREST");
    };
    double scale = alignCorners ? (out > 1 ? (in - 1) / (double) (out - 1) : 0) : in / (double) out;
    double support = scale >= 1 ? halfWidth * scale : halfWidth;
    double invScale = scale >= 1 ? 1 / scale : 1;
    double[] m = new double[out * in];
    for (int i = 0; i < out; i++) {
      double center = scale * (i + 0.5);
      int lo = Math.max((int) (center - support + 0.5), 0); // truncation, as PyTorch's int64 cast
      int hi = Math.min((int) (center + support + 0.5), in);
      double total = 0;
      for (int j = lo; j < hi; j++) total += m[i * in + j] = aaFilter(mode, (j - center + 0.5) * invScale);
      if (total != 0) for (int j = lo; j < hi; j++) m[i * in + j] /= total;
    }
    return m;
  }

  private static double aaFilter(Resize.Mode mode, double x) {
    double d = Math.abs(x);
    return switch (mode) {
      case BILINEAR -> d < 1 ? 1 - d : 0;
      case BICUBIC -> d < 1 ? cubicNear(d, AA_CUBIC_A) : d < 2 ? cubicFar(d, AA_CUBIC_A) : 0;
      case NEAREST -> throw new IllegalArgumentException("antialiasing applies to BILINEAR and BICUBIC, not NEAREST");
    };
  }
}
