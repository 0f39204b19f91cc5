package io.colossal4j.nn;

import io.colossal4j.backend.Conv2dSpec;
import io.colossal4j.ops.Conv;
import io.colossal4j.tensor.Tensor;

/** 2-D convolution over NCHW with weight [out, in/groups, k, k]; {@code samePadding} pads as TensorFlow ("SAME", asymmetric). */
public final class Conv2d extends Module {
  private final Tensor weight;
  private final Tensor bias;
  private final int stride;
  private final int padding;
  private final int dilation;
  private final int groups;
  private final boolean samePadding;

  public Conv2d(ModuleContext ctx, int in, int out, int kernel, int stride, int padding, int dilation, int groups, boolean bias) {
    this(ctx, in, out, kernel, stride, padding, dilation, groups, bias, false);
  }

  private Conv2d(ModuleContext ctx, int in, int out, int kernel, int stride, int padding, int dilation, int groups, boolean bias, boolean same) {
    if (in % groups != 0 || out % groups != 0)
      throw new IllegalArgumentException("Conv2d: channels in=" + in + " out=" + out + " must be divisible by groups=" + groups);
    int fanIn = in / groups * kernel * kernel;
    this.weight = parameter("weight", Init.torchDefault(ctx, fanIn, out, in / groups, kernel, kernel));
    this.bias = bias ? parameter("bias", Init.torchDefault(ctx, fanIn, out)) : null;
    this.stride = stride;
    this.padding = padding;
    this.dilation = dilation;
    this.groups = groups;
    this.samePadding = same;
  }

  public static Conv2d same(ModuleContext ctx, int in, int out, int kernel, int stride, int groups, boolean bias) {
    return new Conv2d(ctx, in, out, kernel, stride, 0, 1, groups, bias, true);
  }

  @Override public Tensor forward(Tensor x) {
    if (samePadding) return Conv.conv2dSame(x, weight, bias, stride, dilation, groups);
    return Conv.conv2d(x, weight, bias, Conv2dSpec.of(stride, padding, dilation, groups));
  }

  public Tensor weight() { return weight; }

  @Override public String toString() {
    return "Conv2d(" + weight.shape() + ", stride " + stride + (samePadding ? ", same" : ", pad " + padding) + (groups > 1 ? ", groups " + groups : "") + ")";
  }
}
