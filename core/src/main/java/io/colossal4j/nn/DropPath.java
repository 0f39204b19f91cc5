package io.colossal4j.nn;

import io.colossal4j.tensor.Rng;
import io.colossal4j.tensor.Tensor;

/** Stochastic depth: drops a whole residual branch per sample in training (Huang et al. 2016). */
public final class DropPath extends Module {
  private final double p;
  private final Rng rng;

  public DropPath(ModuleContext ctx, double p) {
    if (!(p >= 0 && p < 1)) throw new IllegalArgumentException("drop path probability must be in [0, 1), got " + p);
    this.p = p;
    this.rng = rng(ctx.runtimeRng());
  }

  /** Whether forward is the identity now (p = 0 or eval mode): callers may then fuse what surrounds it. */
  public boolean isIdentity() { return p == 0 || !isTraining(); }

  @Override public Tensor forward(Tensor x) {
    return p == 0 ? x : io.colossal4j.ops.Dropout.dropPath(x, p, rng, isTraining());
  }
}
