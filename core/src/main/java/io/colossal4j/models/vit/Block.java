package io.colossal4j.models.vit;

import io.colossal4j.nn.Activation;
import io.colossal4j.nn.DropPath;
import io.colossal4j.nn.LayerNorm;
import io.colossal4j.nn.Module;
import io.colossal4j.nn.ModuleContext;
import io.colossal4j.ops.Arith;
import io.colossal4j.tensor.Tensor;

/**
 * A pre-norm transformer block: x + drop_path(attn(norm1(x))), then x + drop_path(mlp(norm2(x))). When drop path
 * is the identity (rate 0 or eval mode), each branch adds its residual inside its output projection
 * ({@link Attention#forwardAdd}, {@link Mlp#forwardAdd}): on CUDA one GEMM instead of a GEMM and an add.
 */
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
    Tensor h = residual(x, "norm1", "attn");
    return residual(h, "norm2", "mlp");
  }

  /** x + drop_path(branch(norm(x))). */
  private Tensor residual(Tensor x, String norm, String branch) {
    var c = children();
    Tensor in = c.get(norm).forward(x);
    if (dropPath.isIdentity()) {
      if (c.get(branch) instanceof Attention a) return a.forwardAdd(in, x);
      if (c.get(branch) instanceof Mlp m) return m.forwardAdd(in, x);
    }
    return Arith.add(x, dropPath.forward(c.get(branch).forward(in)));
  }

  public Attention attn() { return (Attention) children().get("attn"); }

  public Mlp mlp() { return (Mlp) children().get("mlp"); }
}
