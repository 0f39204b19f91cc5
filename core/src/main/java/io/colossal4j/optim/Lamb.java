package io.colossal4j.optim;

import io.colossal4j.tensor.Tensor;
import java.util.List;

/**
 * LAMB (You et al. 2020, "Large Batch Optimization for Deep Learning"): Adam's direction plus decoupled
 * weight decay, r = m̂/(sqrt(v̂)+ε) + wd·p, scaled per parameter by the trust ratio ‖p‖/‖r‖ (1 when either
 * norm is zero): p −= lr·trust·r. Bias correction as in Adam.
 */
public final class Lamb extends Optimizer {
  private final double beta1;
  private final double beta2;
  private final double eps;

  public Lamb(List<ParamGroup> groups, double beta1, double beta2, double eps) {
    super(groups);
    Adam.checkBeta("beta1", beta1);
    Adam.checkBeta("beta2", beta2);
    if (!(eps > 0)) throw new IllegalArgumentException("LAMB eps must be > 0, got " + eps);
    this.beta1 = beta1;
    this.beta2 = beta2;
    this.eps = eps;
  }

  @Override protected void update(String name, Tensor p, Tensor g, double lr, double wd, long step) {
    Tensor scratch = InPlace.scratch(p), r = InPlace.scratch(p);
    Tensor m = stateOf(name, "exp_avg", p), v = stateOf(name, "exp_avg_sq", p);
    InPlace.scale(m, beta1);
    InPlace.axpy(m, 1 - beta1, g, scratch);
    InPlace.scale(v, beta2);
    InPlace.addProduct(v, 1 - beta2, g, g, scratch);
    double bc1 = 1 - Math.pow(beta1, step), bc2 = 1 - Math.pow(beta2, step);
    InPlace.adamDirection(m, 1 / bc1, v, 1 / bc2, eps, r);
    if (wd != 0) InPlace.axpy(r, wd, p, scratch);
    double pn = InPlace.norm(p), rn = InPlace.norm(r);
    double trust = pn > 0 && rn > 0 ? pn / rn : 1;
    InPlace.axpy(p, -lr * trust, r, scratch);
  }
}
