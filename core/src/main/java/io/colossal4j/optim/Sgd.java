package io.colossal4j.optim;

import io.colossal4j.tensor.Tensor;
import java.util.List;

/**
 * SGD with momentum, dampening, Nesterov and L2 weight decay, with PyTorch's update rule:
 * g += wd·p; buf = μ·buf + (1−dampening)·g (buf = g on the first step); g = nesterov ? g + μ·buf : buf; p −= lr·g.
 */
public final class Sgd extends Optimizer {
  private final double momentum;
  private final double dampening;
  private final boolean nesterov;

  public Sgd(List<ParamGroup> groups, double momentum, double dampening, boolean nesterov) {
    super(groups);
    if (momentum < 0) throw new IllegalArgumentException("SGD momentum must be >= 0, got " + momentum);
    if (nesterov && (momentum <= 0 || dampening != 0))
      throw new IllegalArgumentException("Nesterov momentum needs momentum > 0 and dampening 0, got momentum=" + momentum + " dampening=" + dampening);
    this.momentum = momentum;
    this.dampening = dampening;
    this.nesterov = nesterov;
  }

  @Override protected void update(String name, Tensor p, Tensor grad, double lr, double wd, long step) {
    Tensor scratch = InPlace.scratch(p);
    Tensor g = grad;
    if (wd != 0) {
      g = InPlace.scratch(p);
      p.backend().kernels().copy(grad, g);
      InPlace.axpy(g, wd, p, scratch);
    }
    if (momentum != 0) {
      boolean first = !hasState(name, "momentum_buffer");
      Tensor buf = stateOf(name, "momentum_buffer", p);
      if (first) {
        p.backend().kernels().copy(g, buf);
      } else {
        InPlace.scale(buf, momentum);
        InPlace.axpy(buf, 1 - dampening, g, scratch);
      }
      if (nesterov) {
        Tensor d = g == grad ? InPlace.scratch(p) : g;
        if (d != g) p.backend().kernels().copy(g, d);
        InPlace.axpy(d, momentum, buf, scratch);
        g = d;
      } else {
        g = buf;
      }
    }
    InPlace.axpy(p, -lr, g, scratch);
  }
}
