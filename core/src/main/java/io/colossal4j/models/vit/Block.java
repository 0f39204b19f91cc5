package io.colossal4j.models.vit;

import io.colossal4j.nn.Activation;
import io.colossal4j.nn.DropPath;
import io.colossal4j.nn.LayerNorm;
import io.colossal4j.nn.Module;
import io.colossal4j.nn.ModuleContext;
import io.colossal4j.ops.Arith;
import io.colossal4j.tensor.Tensor;

/** A pre-norm transformer block: x + drop_path(attn(norm1(x))), then x + drop_path(mlp(norm2(x))). */
public final class Block extends Module {
  private final DropPath dropPath;

  public Block(ModuleContext ctx, int dim, int heads, int hidden, boolean qkvBias, double dropRate, double dropPathRate, double eps) {
    child("norm1", new LayerNorm(ctx, dim, eps, false));
    child("attn", new Attention(ctx, dim, heads, qkvBias, dropRate));
    child("norm2", new LayerNorm(ctx, dim, eps, false));
    child("mlp", new Mlp(ctx, dim, hidden, Activation.gelu(), dropRate));
    this.dropPath = child("drop_path", new DropPath(ctx, dropPathRate));
  }

  @Override public Tensor forward(Tensor x) {
    var c = children();
    Tensor h = Arith.add(x, dropPath.forward(c.get("attn").forward(c.get("norm1").forward(x))));
    return Arith.add(h, dropPath.forward(c.get("mlp").forward(c.get("norm2").forward(h))));
  }

  public Attention attn() { return (Attention) children().get("attn"); }

  public Mlp mlp() { return (Mlp) children().get("mlp"); }
}
