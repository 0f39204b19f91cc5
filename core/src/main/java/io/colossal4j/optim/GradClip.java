package io.colossal4j.optim;

import io.colossal4j.tensor.Tensor;
import java.util.Collection;

/** Gradient clipping by global L2 norm, as torch.nn.utils.clip_grad_norm_. */
public final class GradClip {
  private GradClip() {}

  /** Sum of squared gradient entries over the tensors that have a gradient. */
  public static double sumOfSquares(Collection<Tensor> params) {
    java.util.List<Tensor> grads = new java.util.ArrayList<>();
    for (Tensor p : params) if (p.grad() != null) grads.add(p.grad());
    return InPlace.sumOfSquares(grads);
  }

  /**
   * The sum of squares of the gradients as a one-element f64 tensor on the parameters' device, queued without
   * reading it back (0 when no parameter has a gradient). The parameters must share one backend.
   */
  public static Tensor sumOfSquaresOnDevice(java.util.List<Tensor> params) {
    if (params.isEmpty()) throw new IllegalArgumentException("sumOfSquaresOnDevice: no parameters (the result needs a device)");
    io.colossal4j.backend.Backend b = params.getFirst().backend();
    java.util.List<Tensor> grads = new java.util.ArrayList<>();
    for (Tensor p : params) {
      if (p.backend() != b) throw new IllegalArgumentException("sumOfSquaresOnDevice: parameters on " + b.device() + " and " + p.device());
      if (p.grad() != null) grads.add(p.grad());
    }
    return InPlace.sumOfSquaresOnDevice(b, grads);
  }

  /**
   * Scales gradients so their global norm is at most {@code maxNorm}; returns the norm before clipping.
   * {@code totalNorm} is passed in so parallel callers can supply the norm reduced over ranks.
   */
  public static double clipToNorm(Collection<Tensor> params, double maxNorm, double totalNorm) {
    if (!(maxNorm > 0)) throw new IllegalArgumentException("clip_grad_norm must be > 0, got " + maxNorm);
    double coef = maxNorm / (totalNorm + 1e-6);
    if (coef < 1) for (Tensor p : params) if (p.grad() != null) InPlace.scale(p.grad(), coef);
    return totalNorm;
  }

  public static double clip(Collection<Tensor> params, double maxNorm) {
    return clipToNorm(params, maxNorm, Math.sqrt(sumOfSquares(params)));
  }
}
