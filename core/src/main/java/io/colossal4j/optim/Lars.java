package io.colossal4j.optim;

import io.colossal4j.tensor.Tensor;
import java.util.List;

/**
 * LARS (You et al. 2017, "Large Batch Training of Convolutional Networks"): a layer-wise trust ratio
 * η·‖p‖/(‖g‖ + wd·‖p‖) (1 when a norm is zero) scales SGD with momentum:
 * d = g + wd·p; buf = μ·buf + lr·trust·d; p −= buf. Parameters in groups without weight decay (biases,
 * norms) are commonly excluded from adaptation too: {@code adaptNoDecay=false} gives them trust 1.
 */
public final class Lars extends Optimizer {
  private final double momentum;
  private final double eta;
  private final boolean adaptNoDecay;

  public Lars(List<ParamGroup> groups, double momentum, double eta, boolean adaptNoDecay) {
    super(groups);
    if (momentum < 0) throw new IllegalArgumentException("LARS momentum must be >= 0, got " + momentum);
    if (!(eta > 0)) throw new IllegalArgumentException("LARS trust coefficient eta must be > 0, got " + eta);
    this.momentum = momentum;
    this.eta = eta;
    this.adaptNoDecay = adaptNoDecay;
  }

  @Override protected void update(String name, Tensor p, Tensor g, double lr, double wd, long step) {
    Tensor scratch = InPlace.scratch(p), d = InPlace.scratch(p);
    double trust = 1;
    if (wd != 0 || adaptNoDecay) {
      double pn = InPlace.norm(p), gn = InPlace.norm(g);
      trust = pn > 0 && gn > 0 ? eta * pn / (gn + wd * pn) : 1;
    }
    p.backend().kernels().copy(g, d);
    if (wd != 0) InPlace.axpy(d, wd, p, scratch);
    Tensor buf = stateOf(name, "momentum_buffer", p);
    InPlace.scale(buf, momentum);
    InPlace.axpy(buf, lr * trust, d, scratch);
    InPlace.axpy(p, -1, buf, scratch);
  }
}
