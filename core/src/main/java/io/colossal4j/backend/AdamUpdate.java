package io.colossal4j.backend;

import io.colossal4j.tensor.Tensor;

/**
 * The hyper-parameters of one fused Adam/AdamW step ({@link Kernels#adamStep}), PyTorch's rule for every
 * parameter p with gradient g and state m (exp_avg), v (exp_avg_sq), at step t (from 1):
 * <pre>
 *   decoupled (AdamW): p ← p·(1 − lr·wd)          coupled (Adam): g ← g + wd·p
 *   m ← β1·m + (1−β1)·g;   v ← β2·v + (1−β2)·g²
 *   p ← p − lr · (m / (1−β1ᵗ)) / (sqrt(v / (1−β2ᵗ)) + ε)
 * </pre>
 */
public record AdamUpdate(double lr, double beta1, double beta2, double eps, double weightDecay, boolean decoupled, long step) {
  public AdamUpdate {
    if (step < 1) throw new IllegalArgumentException("Adam step counts from 1, got " + step);
    if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1))
      throw new IllegalArgumentException("Adam betas must be in [0, 1), got " + beta1 + ", " + beta2);
    if (!(eps > 0)) throw new IllegalArgumentException("Adam eps must be > 0, got " + eps);
  }

  /** One parameter and its gradient and state: four tensors of one shape, updated in place (p, m, v). */
  public record Param(Tensor param, Tensor grad, Tensor expAvg, Tensor expAvgSq) {
    public Param {
      if (!grad.shape().equals(param.shape()) || !expAvg.shape().equals(param.shape()) || !expAvgSq.shape().equals(param.shape()))
        throw new IllegalArgumentException("Adam: parameter " + param.shape() + ", gradient " + grad.shape() + ", exp_avg " + expAvg.shape()
            + " and exp_avg_sq " + expAvgSq.shape() + " must have one shape");
    }
  }

  /** 1 − β1ᵗ. */
  public double biasCorrection1() { return 1 - Math.pow(beta1, step); }

  /** 1 − β2ᵗ. */
  public double biasCorrection2() { return 1 - Math.pow(beta2, step); }
}
