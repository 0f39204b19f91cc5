package io.colossal4j.ops;

import static io.colossal4j.ops.OpSupport.keepdimShape;
import static io.colossal4j.ops.OpSupport.normalizeDims;

import io.colossal4j.autograd.Autograd;
import io.colossal4j.backend.BinaryOp;
import io.colossal4j.backend.ReduceOp;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;

/** Reductions over dims (none given = all dims), with keepdim, and their gradients. */
public final class Reduce {
  private Reduce() {}

  public static Tensor sum(Tensor x, boolean keepdim, int... dims) {
    int[] d = normalizeDims("sum", x.shape(), dims);
    Tensor out = raw(ReduceOp.SUM, x, d, x.dtype().isFloating() ? x.dtype() : DType.I64);
    Shape in = x.shape();
    Tensor res = Autograd.recordSaving("sum", out, Autograd.NOTHING, g -> new Tensor[] {Views.expand(g, in.toArray()).detach()}, x);
    return keepdim ? res : squeezeDims(res, d);
  }

  /** Sum of all elements, as a rank-0 tensor. */
  public static Tensor sum(Tensor x) { return sum(x, false); }

  public static Tensor mean(Tensor x, boolean keepdim, int... dims) {
    int[] d = normalizeDims("mean", x.shape(), dims);
    OpSupport.requireFloating("mean", x);
    long count = 1;
    for (int i : d) count *= x.size(i);
    Tensor out = raw(ReduceOp.MEAN, x, d, x.dtype());
    Shape in = x.shape();
    double scale = 1.0 / count;
    Tensor res = Autograd.recordSaving("mean", out, Autograd.NOTHING, g -> new Tensor[] {Arith.mulScalar(Views.expand(g, in.toArray()).detach(), scale)}, x);
    return keepdim ? res : squeezeDims(res, d);
  }

  public static Tensor mean(Tensor x) { return mean(x, false); }

  /** Maximum over dims; the gradient is split evenly between tied maxima. */
  public static Tensor amax(Tensor x, boolean keepdim, int... dims) { return extremum("amax", ReduceOp.MAX, x, keepdim, dims); }

  public static Tensor amin(Tensor x, boolean keepdim, int... dims) { return extremum("amin", ReduceOp.MIN, x, keepdim, dims); }

  private static Tensor extremum(String name, ReduceOp op, Tensor x, boolean keepdim, int... dims) {
    int[] d = normalizeDims(name, x.shape(), dims);
    if (x.numel() == 0) throw new TensorException(name + ": empty tensor " + x.shape() + " has no " + (op == ReduceOp.MAX ? "maximum" : "minimum"));
    Tensor out = raw(op, x, d, x.dtype());
    Tensor res = Autograd.record(name, out, g -> {
      Tensor mask = Arith.cast(Arith.compare(BinaryOp.EQ, x, out), g.dtype());
      Tensor count = raw(ReduceOp.SUM, mask, d, g.dtype());
      return new Tensor[] {Arith.div(Arith.mul(mask, g), count)};
    }, x);
    return keepdim ? res : squeezeDims(res, d);
  }

  /** Variance with Bessel's correction {@code correction} (1 = unbiased, 0 = population). */
  public static Tensor var(Tensor x, int correction, boolean keepdim, int... dims) {
    int[] d = normalizeDims("var", x.shape(), dims);
    long count = 1;
    for (int i : d) count *= x.size(i);
    if (count - correction <= 0)
      throw new TensorException("var: " + count + " elements with correction " + correction + " leave no degrees of freedom");
    Tensor centered = Arith.sub(x, mean(x, true, d));
    Tensor ss = sum(Arith.square(centered), keepdim, d);
    return Arith.mulScalar(ss, 1.0 / (count - correction));
  }

  /** Index of the maximum along {@code dim} (i64, first on ties). */
  public static Tensor argmax(Tensor x, int dim, boolean keepdim) {
    int d = x.shape().axis(dim);
    Tensor out = raw(ReduceOp.ARGMAX, x, new int[] {d}, DType.I64);
    return keepdim ? out : squeezeDims(out, new int[] {d});
  }

  /** log(sum(exp(x))) over dims, stable. */
  public static Tensor logSumExp(Tensor x, boolean keepdim, int... dims) {
    int[] d = normalizeDims("logsumexp", x.shape(), dims);
    Tensor m = GradModeDetached.amaxNoGrad(x, d);
    Tensor s = Arith.add(Arith.log(sum(Arith.exp(Arith.sub(x, m)), true, d)), m);
    return keepdim ? s : squeezeDims(s, d);
  }

  /** The kernel alone, no autograd; output in keepdim shape. */
  static Tensor raw(ReduceOp op, Tensor x, int[] dims, DType dtype) {
    Tensor out = OpSupport.empty(keepdimShape(x.shape(), dims), dtype, x.backend());
    x.backend().kernels().reduce(op, x, dims, out);
    return out;
  }

  private static Tensor squeezeDims(Tensor t, int[] dims) {
    Tensor r = t;
    for (int i = dims.length - 1; i >= 0; i--) r = Views.squeeze(r, dims[i]);
    return r;
  }

  /** Helpers whose results are constants for autograd. */
  private static final class GradModeDetached {
    static Tensor amaxNoGrad(Tensor x, int[] d) { return raw(ReduceOp.MAX, x, d, x.dtype()); }
  }
}
