package io.colossal4j.models.gpt;

import io.colossal4j.nn.Dropout;
import io.colossal4j.nn.Layers;
import io.colossal4j.nn.Linear;
import io.colossal4j.nn.Module;
import io.colossal4j.nn.ModuleContext;
import io.colossal4j.ops.Attention;
import io.colossal4j.ops.PackedAttention;
import io.colossal4j.tensor.Tensor;

/** Causal multi-head attention; heads are read from c_attn's width, so a tensor-parallel column shard works unchanged. */
public final class CausalSelfAttention extends Module {
  private final int headDim;
  private final int heads;
  private final Dropout residDrop;

  CausalSelfAttention(ModuleContext ctx, GptConfig c) {
    this.headDim = c.nEmbd() / c.nHead();
    this.heads = c.nHead();
    child("c_attn", new Linear(ctx, c.nEmbd(), 3 * c.nEmbd(), c.bias()));
    child("c_proj", new Linear(ctx, c.nEmbd(), c.nEmbd(), c.bias()));
    this.residDrop = child("resid_dropout", new Dropout(ctx, c.dropout()));
  }

  @Override public Tensor forward(Tensor x) { return residDrop.forward(children().get("c_proj").forward(attend(x))); }

  /** residual + forward(x), the residual folded into c_proj's GEMM where it can be ({@link Layers#projectAdd}). */
  public Tensor forwardAdd(Tensor x, Tensor residual) { return Layers.projectAdd(children().get("c_proj"), residDrop, attend(x), residual); }

  /** The heads' outputs before c_proj, [B, T, H·D]. */
  private Tensor attend(Tensor x) {
    Tensor qkv = children().get("c_attn").forward(x);
    int heads = qkv.size(2) / (3 * headDim);
    // q, k, v read as strided views of qkv and the heads written straight into [B, T, H·D] where the backend can
    return PackedAttention.selfAttention(qkv, heads, Attention.Options.DEFAULT.withCausal(true));
  }

  /** The fused q/k/v projection [3·heads·headDim, n_embd] (q-heads, k-heads, v-heads), while still a plain Linear. */
  public Linear cAttn() { return Layers.linear(this, "c_attn"); }

  public Linear cProj() { return Layers.linear(this, "c_proj"); }

  /** The number of heads of the single-device model. */
  public int heads() { return heads; }
}
