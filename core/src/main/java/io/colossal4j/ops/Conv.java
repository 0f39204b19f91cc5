package io.colossal4j.ops;

import io.colossal4j.autograd.Autocast;
import io.colossal4j.autograd.Autograd;
import io.colossal4j.backend.BinaryOp;
import io.colossal4j.backend.Conv2dSpec;
import io.colossal4j.backend.Pool2dSpec;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;

/**
 * 2-D convolution and pooling over NCHW tensors, PyTorch semantics, with their gradients.
 *
 * <p>Shapes: x [N, C, H, W]; conv weight [Cout, C/groups, kH, kW]; bias [Cout]. Kernels receive contiguous
 * operands (inputs that are views are copied first) and write contiguous outputs; the gradients the
 * backward rules return are contiguous.
 */
public final class Conv {
  private Conv() {}

  // ------------------------------------------------------------- convolution

  /**
   * y = conv2d(x, w) + bias (cross-correlation, as PyTorch). Depthwise convolution is {@code groups == C}
   * with w of shape [C*m, 1, kH, kW]. {@code bias} may be null.
   */
  public static Tensor conv2d(Tensor x, Tensor w, Tensor bias, Conv2dSpec spec) {
    // identity unless an Autocast region is active
    return conv2dIn(Arith.cast(x, Autocast.target(x.dtype())), Arith.cast(w, Autocast.target(w.dtype())),
        bias == null ? null : Arith.cast(bias, Autocast.target(bias.dtype())), spec);
  }

  private static Tensor conv2dIn(Tensor x, Tensor w, Tensor bias, Conv2dSpec spec) {
    checkConv(x, w, bias, spec);
    int cout = w.size(0);
    Shape outShape = Shape.of(x.size(0), cout, spec.outH(x.size(2), w.size(2)), spec.outW(x.size(3), w.size(3)));
    Tensor xd = dense(x), wd = dense(w);
    Tensor out = OpSupport.empty(outShape, x.dtype(), x.backend());
    x.backend().kernels().conv2d(xd, wd, spec, out);
    if (bias != null) x.backend().kernels().binary(BinaryOp.ADD, out, channelView(bias, outShape), out);
    boolean gx = x.requiresGrad(), gw = w.requiresGrad(), gb = bias != null && bias.requiresGrad();
    Shape xShape = x.shape(), wShape = w.shape();
    return Autograd.recordSaving("conv2d", out, Autograd.saving(gw ? xd : null, gx ? wd : null), g -> {
      Tensor gd = dense(g);
      Tensor dx = null, dw = null;
      if (gx) {
        dx = OpSupport.empty(xShape, x.dtype(), g.backend());
        g.backend().kernels().conv2dBackwardInput(gd, wd, spec, dx);
      }
      if (gw) {
        dw = OpSupport.empty(wShape, w.dtype(), g.backend());
        g.backend().kernels().conv2dBackwardWeight(xd, gd, spec, dw);
      }
      return new Tensor[] {dx, dw, gb ? Reduce.sum(gd, false, 0, 2, 3) : null};
    }, x, w, bias);
  }

  /** PyTorch's conv2d with symmetric integer stride, padding, dilation. */
  public static Tensor conv2d(Tensor x, Tensor w, Tensor bias, int stride, int padding, int dilation, int groups) {
    return conv2d(x, w, bias, Conv2dSpec.of(stride, padding, dilation, groups));
  }

  /**
   * TensorFlow "SAME" padding for an input of inH x inW: the output is ceil(in / stride) and the total
   * padding {@code max((out - 1) * stride + (k - 1) * dilation + 1 - in, 0)} is split with the extra cell at
   * the bottom/right, as TensorFlow and timm's {@code tf_} models (Conv2dSame) do.
   */
  public static Conv2dSpec samePadding(int inH, int inW, int kH, int kW, int stride, int dilation, int groups) {
    if (inH < 1 || inW < 1 || kH < 1 || kW < 1)
      throw new TensorException("samePadding: input " + inH + "x" + inW + " and kernel " + kH + "x" + kW + " must be >= 1");
    int padH = samePad(inH, kH, stride, dilation), padW = samePad(inW, kW, stride, dilation);
    return new Conv2dSpec(stride, stride, padH / 2, padH - padH / 2, padW / 2, padW - padW / 2, dilation, dilation, groups);
  }

  private static int samePad(int in, int k, int stride, int dilation) {
    if (stride < 1) throw new TensorException("samePadding: stride must be >= 1, got " + stride);
    return Math.max((Math.ceilDiv(in, stride) - 1) * stride + (k - 1) * dilation + 1 - in, 0);
  }

  /** conv2d with TensorFlow "SAME" padding computed from x's spatial size (timm's Conv2dSame). */
  public static Tensor conv2dSame(Tensor x, Tensor w, Tensor bias, int stride, int dilation, int groups) {
    if (x.rank() != 4 || w.rank() != 4)
      throw new TensorException("conv2dSame: input must be [N, C, H, W] and weight [Cout, C/groups, kH, kW], got " + x.shape() + " and " + w.shape());
    return conv2d(x, w, bias, samePadding(x.size(2), x.size(3), w.size(2), w.size(3), stride, dilation, groups));
  }

  private static void checkConv(Tensor x, Tensor w, Tensor bias, Conv2dSpec spec) {
    OpSupport.sameBackend("conv2d", x, w);
    if (x.rank() != 4 || w.rank() != 4)
      throw new TensorException("conv2d: input must be [N, C, H, W] and weight [Cout, C/groups, kH, kW], got " + x.shape() + " and " + w.shape());
    OpSupport.requireFloating("conv2d", x);
    if (x.dtype() != w.dtype()) throw new TensorException("conv2d: input is " + x.dtype() + " but weight is " + w.dtype());
    int g = spec.groups(), cin = x.size(1), cout = w.size(0);
    if (cin % g != 0 || cout % g != 0 || w.size(1) * g != cin)
      throw new TensorException("conv2d: with groups=" + g + " input channels " + cin + " and output channels " + cout
          + " must be divisible by groups and weight " + w.shape() + " must have " + (cin / Math.max(g, 1)) + " channels per group in dim 1");
    if (bias != null) {
      OpSupport.sameBackend("conv2d", x, bias);
      if (bias.rank() != 1 || bias.size(0) != cout || bias.dtype() != x.dtype())
        throw new TensorException("conv2d: bias must be [" + cout + "] " + x.dtype() + ", got " + bias.shape() + " " + bias.dtype());
    }
    int oh = spec.outH(x.size(2), w.size(2)), ow = spec.outW(x.size(3), w.size(3));
    if (oh < 1 || ow < 1)
      throw new TensorException("conv2d: input " + x.shape() + " with kernel " + w.size(2) + "x" + w.size(3) + " and " + spec
          + " gives an empty output " + oh + "x" + ow + "; the padded input must be at least the dilated kernel");
  }

  // ------------------------------------------------------------- pooling

  /** Max pool (padding counts as -inf; a window's gradient goes to its maximum). */
  public static Tensor maxPool2d(Tensor x, Pool2dSpec spec) {
    Shape outShape = poolShape("maxPool2d", x, spec);
    Tensor xd = dense(x);
    Tensor out = OpSupport.empty(outShape, x.dtype(), x.backend());
    Tensor indices = OpSupport.empty(outShape, DType.I64, x.backend());
    x.backend().kernels().maxPool2d(xd, spec, out, indices);
    Shape xShape = x.shape();
    return Autograd.recordSaving("max_pool2d", out, Autograd.saving(indices), g -> {
      Tensor dx = OpSupport.empty(xShape, x.dtype(), g.backend());
      g.backend().kernels().maxPool2dBackward(dense(g), indices, dx);
      return new Tensor[] {dx};
    }, x);
  }

  /** PyTorch's max_pool2d(kernel, stride, padding), floor mode. */
  public static Tensor maxPool2d(Tensor x, int kernel, int stride, int padding) {
    return maxPool2d(x, Pool2dSpec.of(kernel, stride, padding, false, true));
  }

  /** Average pool; the divisor follows the spec's countIncludePad and ceilMode as PyTorch. */
  public static Tensor avgPool2d(Tensor x, Pool2dSpec spec) {
    Shape outShape = poolShape("avgPool2d", x, spec);
    Tensor out = OpSupport.empty(outShape, x.dtype(), x.backend());
    x.backend().kernels().avgPool2d(dense(x), spec, out);
    Shape xShape = x.shape();
    return Autograd.recordSaving("avg_pool2d", out, Autograd.NOTHING, g -> {
      Tensor dx = OpSupport.empty(xShape, x.dtype(), g.backend());
      g.backend().kernels().avgPool2dBackward(dense(g), spec, dx);
      return new Tensor[] {dx};
    }, x);
  }

  /**
   * Adaptive average pool to outH x outW with PyTorch's bins (output i averages input
   * [floor(i*in/out), ceil((i+1)*in/out))). Global pooling (1x1) is a plain mean; evenly dividing sizes
   * are an ordinary average pool; other sizes apply the separable bin-averaging matrices.
   */
  public static Tensor adaptiveAvgPool2d(Tensor x, int outH, int outW) {
    if (x.rank() != 4) throw new TensorException("adaptiveAvgPool2d: input must be [N, C, H, W], got " + x.shape());
    OpSupport.requireFloating("adaptiveAvgPool2d", x);
    int inH = x.size(2), inW = x.size(3);
    if (outH < 1 || outW < 1 || inH < 1 || inW < 1)
      throw new TensorException("adaptiveAvgPool2d: output " + outH + "x" + outW + " and input " + x.shape() + " need sizes >= 1");
    if (outH == 1 && outW == 1) return Reduce.mean(x, true, 2, 3);
    if (inH % outH == 0 && inW % outW == 0) {
      int kh = inH / outH, kw = inW / outW;
      return avgPool2d(x, new Pool2dSpec(kh, kw, kh, kw, 0, 0, false, true));
    }
    return Resize.separable(x, binAverages(inH, outH), outH, binAverages(inW, outW), outW);
  }

  /** [out, in] row-major: row i averages PyTorch's adaptive bin i. */
  static double[] binAverages(int in, int out) {
    double[] m = new double[out * in];
    for (int i = 0; i < out; i++) {
      int start = (int) ((long) i * in / out), end = (int) Math.ceilDiv((long) (i + 1) * in, out);
      for (int j = start; j < end; j++) m[i * in + j] = 1.0 / (end - start);
    }
    return m;
  }

  private static Shape poolShape(String op, Tensor x, Pool2dSpec spec) {
    if (x.rank() != 4) throw new TensorException(op + ": input must be [N, C, H, W], got " + x.shape());
    OpSupport.requireFloating(op, x);
    int oh = spec.outH(x.size(2)), ow = spec.outW(x.size(3));
    if (oh < 1 || ow < 1)
      throw new TensorException(op + ": input " + x.shape() + " with " + spec + " gives an empty output " + oh + "x" + ow
          + "; the padded input must be at least the kernel");
    return Shape.of(x.size(0), x.size(1), oh, ow);
  }

  // ------------------------------------------------------------- plumbing shared with Norm and Resize

  /** t itself when contiguous, else a contiguous copy. No autograd: for feeding kernels. */
  static Tensor dense(Tensor t) {
    if (t.isContiguous()) return t;
    Tensor c = OpSupport.emptyLike(t);
    t.backend().kernels().copy(t, c);
    return c;
  }

  /** A per-channel vector c [C] viewed as broadcast along dim 1 of {@code shape} (no copy, no autograd). */
  static Tensor channelView(Tensor c, Shape shape) {
    long[] strides = new long[shape.rank()];
    strides[1] = c.stride(0);
    return c.view(shape, strides, c.offset());
  }
}
