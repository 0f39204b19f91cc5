package io.colossal4j.models.vit;

import io.colossal4j.nn.Activation;
import io.colossal4j.nn.Dropout;
import io.colossal4j.nn.Layers;
import io.colossal4j.nn.Linear;
import io.colossal4j.nn.Module;
import io.colossal4j.nn.ModuleContext;
import io.colossal4j.tensor.Tensor;

/** fc1 → activation → dropout → fc2 → dropout (timm's Mlp); fc1/fc2 are the column/row pair of a tensor-parallel plan. */
public final class Mlp extends Module {
  private final Activation act;
  private final Dropout drop;

  public Mlp(ModuleContext ctx, int dim, int hidden, Activation act, double dropRate) {
    child("fc1", new Linear(ctx, dim, hidden, true));
    this.act = act;
    child("fc2", new Linear(ctx, hidden, dim, true));
    this.drop = child("drop", new Dropout(ctx, dropRate));
  }

  @Override public Tensor forward(Tensor x) { return drop.forward(children().get("fc2").forward(hidden(x))); }

  /** residual + forward(x), the residual folded into fc2's GEMM where it can be ({@link Layers#projectAdd}). */
  public Tensor forwardAdd(Tensor x, Tensor residual) { return Layers.projectAdd(children().get("fc2"), drop, hidden(x), residual); }

  /** dropout(act(fc1(x))), a GELU fused with fc1 where it can be ({@link Layers#linearThen}). */
  private Tensor hidden(Tensor x) { return drop.forward(Layers.linearThen(children().get("fc1"), act, x)); }

  public Linear fc1() { return Layers.linear(this, "fc1"); }

  public Linear fc2() { return Layers.linear(this, "fc2"); }
}
