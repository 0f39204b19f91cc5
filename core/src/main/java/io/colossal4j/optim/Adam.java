package io.colossal4j.optim;

import io.colossal4j.backend.AdamUpdate;
import io.colossal4j.backend.Backend;
import io.colossal4j.tensor.Device;
import io.colossal4j.tensor.Tensor;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Adam and AdamW (Kingma & Ba 2015; Loshchilov & Hutter 2019), PyTorch's update rule:
 * m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²; p −= lr·(m/(1−β1ᵗ)) / (sqrt(v/(1−β2ᵗ)) + ε).
 * Adam adds the weight decay to the gradient (L2); AdamW decays the weights directly: p *= 1 − lr·wd.
 */
public final class Adam extends Optimizer {
  private final double beta1;
  private final double beta2;
  private final double eps;
  private final boolean decoupled;

  public Adam(List<ParamGroup> groups, double beta1, double beta2, double eps, boolean decoupledWeightDecay) {
    super(groups);
    checkBeta("beta1", beta1);
    checkBeta("beta2", beta2);
    if (!(eps > 0)) throw new IllegalArgumentException("Adam eps must be > 0, got " + eps);
    this.beta1 = beta1;
    this.beta2 = beta2;
    this.eps = eps;
    this.decoupled = decoupledWeightDecay;
  }

  public static Adam adamW(List<ParamGroup> groups) { return new Adam(groups, 0.9, 0.999, 1e-8, true); }

  static void checkBeta(String name, double b) {
    if (!(b >= 0 && b < 1)) throw new IllegalArgumentException(name + " must be in [0, 1), got " + b);
  }

  /** Backends whose fused step is a fast kernel: CUDA, and the CPU backend's Vector API kernels. */
  private static boolean fused(Tensor p) {
    return p.device().kind() == Device.Kind.CUDA || p.backend().kernels().fastAdamStep();
  }

  /**
   * Parameters the fused kernel takes go to it together, one call per backend (CUDA updates up to 16 tensors
   * per launch; the fast CPU kernels loop), instead of about ten elementwise passes each; the rest, and every
   * parameter on the scalar reference backend, take the composed path of {@link #update}, which stays the
   * fused kernels' twin.
   */
  @Override protected void updateGroup(List<Entry> entries, double lr, double wd, long step) {
    Map<Backend, List<AdamUpdate.Param>> fusedByBackend = new LinkedHashMap<>();
    for (Entry e : entries) {
      Tensor p = e.param(), g = e.grad();
      if (fused(p) && p.isContiguous() && g.isContiguous()) {
        Tensor m = stateOf(e.name(), "exp_avg", p), v = stateOf(e.name(), "exp_avg_sq", p);
        fusedByBackend.computeIfAbsent(p.backend(), b -> new ArrayList<>()).add(new AdamUpdate.Param(p, g, m, v));
      } else {
        update(e.name(), p, g, lr, wd, step);
      }
    }
    AdamUpdate u = new AdamUpdate(lr, beta1, beta2, eps, wd, decoupled, step);
    fusedByBackend.forEach((backend, params) -> backend.kernels().adamStep(params, u));
  }

  @Override protected void update(String name, Tensor p, Tensor grad, double lr, double wd, long step) {
    Tensor scratch = InPlace.scratch(p);
    Tensor g = grad;
    if (wd != 0 && decoupled) InPlace.scale(p, 1 - lr * wd);
    if (wd != 0 && !decoupled) {
      g = InPlace.scratch(p);
      p.backend().kernels().copy(grad, g);
      InPlace.axpy(g, wd, p, scratch);
    }
    Tensor m = stateOf(name, "exp_avg", p), v = stateOf(name, "exp_avg_sq", p);
    InPlace.scale(m, beta1);
    InPlace.axpy(m, 1 - beta1, g, scratch);
    InPlace.scale(v, beta2);
    InPlace.addProduct(v, 1 - beta2, g, g, scratch);
    double bc1 = 1 - Math.pow(beta1, step), bc2 = 1 - Math.pow(beta2, step);
    InPlace.adamDirection(m, 1 / bc1, v, 1 / bc2, eps, scratch);
    InPlace.axpy(p, -lr, scratch, InPlace.scratch(p));
  }
}
