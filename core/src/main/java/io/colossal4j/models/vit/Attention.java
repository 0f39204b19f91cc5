package io.colossal4j.models.vit;

import io.colossal4j.nn.Dropout;
import io.colossal4j.nn.Layers;
import io.colossal4j.nn.Linear;
import io.colossal4j.nn.Module;
import io.colossal4j.nn.ModuleContext;
import io.colossal4j.tensor.Tensor;

/**
 * Multi-head self-attention as timm's: qkv projection, scaled dot-product attention, output projection.
 * The number of heads is read from the qkv projection's width (3 · heads · headDim), so a tensor-parallel
 * plan that gives this rank a column shard of qkv (its heads) and a row shard of proj needs no change here.
 * Shapes: x_BND → qkv_BN(3HD) → q,k,v_BHND → o_BHND → o_BN(HD) → proj.
 */
public final class Attention extends Module {
  private final int headDim;
  private final int heads;
  private final Dropout projDrop;

  public Attention(ModuleContext ctx, int dim, int heads, boolean qkvBias, double dropRate) {
    this.headDim = dim / heads;
    this.heads = heads;
    child("qkv", new Linear(ctx, dim, 3 * dim, qkvBias));
    child("proj", new Linear(ctx, dim, dim, true));
    this.projDrop = child("proj_drop", new Dropout(ctx, dropRate));
  }

  @Override public Tensor forward(Tensor x) { return projDrop.forward(children().get("proj").forward(attend(x))); }

  /** residual + forward(x), the residual folded into proj's GEMM where it can be ({@link Layers#projectAdd}). */
  public Tensor forwardAdd(Tensor x, Tensor residual) { return Layers.projectAdd(children().get("proj"), projDrop, attend(x), residual); }

  /** The heads' outputs before the projection, [B, N, H·D]. */
  private Tensor attend(Tensor x) {
    Tensor qkvOut = children().get("qkv").forward(x);
    int heads = qkvOut.size(2) / (3 * headDim);
    return io.colossal4j.ops.PackedAttention.selfAttention(qkvOut, heads, io.colossal4j.ops.Attention.Options.DEFAULT);
  }

  /** The fused q/k/v projection [3·heads·headDim, dim] (q-heads, then k-heads, then v-heads), while still a plain Linear. */
  public Linear qkv() { return Layers.linear(this, "qkv"); }

  /** The output projection [dim, heads·headDim], while still a plain Linear. */
  public Linear proj() { return Layers.linear(this, "proj"); }

  /** The number of heads of the single-device model. */
  public int heads() { return heads; }
}
