package io.colossal4j.nn;

import io.colossal4j.ops.Indexing;
import io.colossal4j.tensor.Tensor;

/** A lookup table [num, dim]; forward maps integer ids of any shape to [..., dim]. */
public final class Embedding extends Module {
  private final Tensor weight;

  public Embedding(ModuleContext ctx, int num, int dim, double std) {
    this.weight = parameter("weight", Init.normal(ctx, 0, std, num, dim));
  }

  @Override public Tensor forward(Tensor ids) { return Indexing.embedding(weight, ids); }

  public Tensor weight() { return weight; }
}
