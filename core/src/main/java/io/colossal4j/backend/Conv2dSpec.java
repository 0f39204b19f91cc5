package io.colossal4j.backend;

/**
 * Geometry of a 2-D convolution over NCHW input. Padding may be asymmetric (TensorFlow "same" pads
 * more at the bottom/right), so it is given per side.
 */
public record Conv2dSpec(int strideH, int strideW, int padTop, int padBottom, int padLeft, int padRight,
                         int dilationH, int dilationW, int groups) {
  public Conv2dSpec {
    if (strideH < 1 || strideW < 1) throw new IllegalArgumentException("conv2d stride must be >= 1, got " + strideH + "x" + strideW);
    if (dilationH < 1 || dilationW < 1) throw new IllegalArgumentException("conv2d dilation must be >= 1, got " + dilationH + "x" + dilationW);
    if (padTop < 0 || padBottom < 0 || padLeft < 0 || padRight < 0) throw new IllegalArgumentException("conv2d padding must be >= 0");
    if (groups < 1) throw new IllegalArgumentException("conv2d groups must be >= 1, got " + groups);
  }

  public static Conv2dSpec of(int stride, int padding, int dilation, int groups) {
    return new Conv2dSpec(stride, stride, padding, padding, padding, padding, dilation, dilation, groups);
  }

  public int outH(int inH, int kH) { return (inH + padTop + padBottom - dilationH * (kH - 1) - 1) / strideH + 1; }

  public int outW(int inW, int kW) { return (inW + padLeft + padRight - dilationW * (kW - 1) - 1) / strideW + 1; }
}
