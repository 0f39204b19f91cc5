package io.colossal4j.models.vit;

import io.colossal4j.nn.Activation;
import io.colossal4j.nn.Dropout;
import io.colossal4j.nn.Layers;
import io.colossal4j.nn.Linear;
import io.colossal4j.nn.Module;
import io.colossal4j.nn.ModuleContext;
import io.colossal4j.ops.Arith;
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

  /** residual + forward(x): the residual added inside fc2's GEMM when dropout is the identity and fc2 a plain Linear. */
  public Tensor forwardAdd(Tensor x, Tensor residual) {
    Tensor h = hidden(x);
    if (drop.isIdentity() && children().get("fc2") instanceof Linear fc2) return fc2.forwardAdd(h, residual);
    return Arith.add(residual, drop.forward(children().get("fc2").forward(h)));
  }

  /** dropout(act(fc1(x))); a GELU after a plain Linear fc1 runs as {@link Linear#forwardGelu} (same values, fused backward). */
  private Tensor hidden(Tensor x) {
    Module fc1 = children().get("fc1");
    Tensor h = fc1 instanceof Linear lin && act.geluKind() != null ? lin.forwardGelu(x, act.geluKind()) : act.forward(fc1.forward(x));
    return drop.forward(h);
  }

  public Linear fc1() { return Layers.linear(this, "fc1"); }

  public Linear fc2() { return Layers.linear(this, "fc2"); }
}
