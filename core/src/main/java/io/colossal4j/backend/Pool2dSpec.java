package io.colossal4j.backend;

/** Geometry of a 2-D max or average pool over NCHW input (symmetric padding, PyTorch semantics). */
public record Pool2dSpec(int kernelH, int kernelW, int strideH, int strideW, int padH, int padW,
                         boolean ceilMode, boolean countIncludePad) {
  public Pool2dSpec {
    if (kernelH < 1 || kernelW < 1 || strideH < 1 || strideW < 1)
      throw new IllegalArgumentException("pool kernel and stride must be >= 1, got kernel " + kernelH + "x" + kernelW + " stride " + strideH + "x" + strideW);
    if (padH < 0 || padW < 0 || padH * 2 > kernelH || padW * 2 > kernelW)
      throw new IllegalArgumentException("pool padding must be in [0, kernel/2], got " + padH + "x" + padW + " for kernel " + kernelH + "x" + kernelW);
  }

  /** Square kernel, stride and padding. */
  public static Pool2dSpec of(int kernel, int stride, int padding, boolean ceilMode, boolean countIncludePad) {
    return new Pool2dSpec(kernel, kernel, stride, stride, padding, padding, ceilMode, countIncludePad);
  }

  public int outH(int inH) { return outSize(inH, kernelH, strideH, padH); }

  public int outW(int inW) { return outSize(inW, kernelW, strideW, padW); }

  private int outSize(int in, int k, int s, int p) {
    int num = in + 2 * p - k;
    int out = (ceilMode ? Math.ceilDiv(num, s) : Math.floorDiv(num, s)) + 1;
    if (ceilMode && (long) (out - 1) * s >= in + p) out--; // the last window must start inside the input or left padding
    return out;
  }
}
