package io.colossal4j.nn;

import io.colossal4j.tensor.Rng;
import io.colossal4j.tensor.Tensor;

/** Dropout (inverted scaling) in training mode; identity in eval mode or when p = 0. */
public final class Dropout extends Module {
  private final double p;
  private final Rng rng;

  public Dropout(ModuleContext ctx, double p) {
    if (!(p >= 0 && p < 1)) throw new IllegalArgumentException("dropout probability must be in [0, 1), got " + p);
    this.p = p;
    this.rng = rng(ctx.runtimeRng());
  }

  /** Whether forward is the identity now (p = 0 or eval mode): callers may then fuse what surrounds it. */
  public boolean isIdentity() { return p == 0 || !isTraining(); }

  @Override public Tensor forward(Tensor x) {
    return p == 0 ? x : io.colossal4j.ops.Dropout.dropout(x, p, rng, isTraining());
  }
}
