package io.colossal4j.ops;

import io.colossal4j.autograd.Autograd;
import io.colossal4j.tensor.Tensor;

/**
 * Softmax and log-softmax along one dim, with their gradients. The input may have any strides; the
 * output is contiguous. Both are computed by the backend's fused kernel (max-subtracted, so large
 * logits do not overflow) and the backward uses only the saved output:
 * softmax: gx = y·(gy − Σ gy·y); log-softmax: gx = gy − exp(y)·Σ gy.
 */
public final class Softmax {
  private Softmax() {}

  public static Tensor softmax(Tensor x, int dim) { return apply("softmax", x, dim, false); }

  public static Tensor logSoftmax(Tensor x, int dim) { return apply("log_softmax", x, dim, true); }

  private static Tensor apply(String name, Tensor x, int dim, boolean log) {
    OpSupport.requireFloating(name, x);
    if (x.rank() == 0) return Views.reshape(apply(name, Views.reshape(x, 1), dim, log)); // a scalar: softmax 1, log-softmax 0
    int d = OpSupport.normalizeDims(name, x.shape(), dim)[0];
    Tensor out = OpSupport.empty(x.shape(), x.dtype(), x.backend());
    if (x.numel() == 0) return out;
    x.backend().kernels().softmax(x, d, log, out);
    Tensor y = out.detach();
    return Autograd.recordSaving(name, out, Autograd.saving(y), g -> {
      Tensor gx = OpSupport.emptyLike(g);
      g.backend().kernels().softmaxBackward(y, g, d, log, gx);
      return new Tensor[] {gx};
    }, x);
  }
}
