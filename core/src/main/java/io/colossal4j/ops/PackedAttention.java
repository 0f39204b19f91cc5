package io.colossal4j.ops;

import io.colossal4j.autograd.Autocast;
import io.colossal4j.autograd.Autograd;
import io.colossal4j.backend.FusedAttention;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;

/**
 * Multi-head self-attention read straight from a packed q/k/v projection, timm's layout:
 * qkv_BN(3HD) = [q heads | k heads | v heads] → o_BN(HD), heads merged back in the same order.
 *
 * <p>The reference is the composition a ViT block writes (reshape to [B, N, 3, H, D], permute to
 * [3, B, H, N, D], select q, k, v, {@link Attention#scaledDotProductAttention}, transpose and reshape the
 * result). When the backend's fused kernel takes the call and {@linkplain FusedAttention#writesStridedOutputs
 * writes strided outputs}, q, k, v are instead strided views of qkv, the kernel writes o in [B, N, H·D] order
 * and, backward, the three gradients straight into one [B, N, 3·H·D] gradient: no permuted copies, no
 * zero-filled full-size gradient per select, no sums of them. Legend: B batch, N tokens, H heads, D head dim.
 */
public final class PackedAttention {
  private PackedAttention() {}

  /** Attention of qkv [B, N, 3·heads·D] with the given options (no mask, bias or cosine scale on the fused path). */
  public static Tensor selfAttention(Tensor qkv, int heads, Attention.Options o) {
    if (qkv.rank() != 3 || heads < 1 || qkv.size(2) % (3 * heads) != 0)
      throw new TensorException("packed attention: qkv must be [B, N, 3·heads·D] with heads = " + heads + ", got " + qkv.shape());
    qkv = Arith.cast(qkv, Autocast.target(qkv.dtype()));   // identity unless an Autocast region is active
    int b = qkv.size(0), n = qkv.size(1), d = qkv.size(2) / (3 * heads);
    var fused = qkv.backend().kernels().fusedAttention();
    boolean plain = o.mask() == null && o.bias() == null && o.logitScale() == null && o.dropoutP() == 0;
    if (fused.isPresent() && fused.get().writesStridedOutputs() && plain && qkv.stride(2) == 1) {
      Tensor out = tryFused(fused.get(), qkv, heads, d, o);
      if (out != null) return out;
    }
    Tensor t = Views.permute(Views.reshape(qkv, b, n, 3, heads, d), 2, 0, 3, 1, 4);
    Tensor y = Attention.scaledDotProductAttention(Views.select(t, 0, 0), Views.select(t, 0, 1), Views.select(t, 0, 2), o);
    return Views.reshape(Views.transpose(y, 1, 2), b, n, heads * d);
  }

  /** Part {@code which} (0 q, 1 k, 2 v) of a [B, N, parts·H·D] tensor with unit last stride as a [B, H, N, D] view. */
  private static Tensor heads(Tensor t, int which, int heads, int d) {
    return t.view(Shape.of(t.size(0), heads, t.size(1), d), new long[] {t.stride(0), (long) d * t.stride(2), t.stride(1), t.stride(2)},
        t.offset() + (long) which * heads * d * t.stride(2));
  }

  private static Tensor tryFused(FusedAttention fa, Tensor qkv, int heads, int d, Attention.Options o) {
    int b = qkv.size(0), n = qkv.size(1);
    Tensor q = heads(qkv, 0, heads, d), k = heads(qkv, 1, heads, d), v = heads(qkv, 2, heads, d);
    double scale = o.scale() != null ? o.scale() : 1 / Math.sqrt(d);
    FusedAttention.Spec spec = new FusedAttention.Spec(scale, o.causal(), 0, 0, 0);
    if (!fa.supports(q, k, v, null, spec)) return null;
    Tensor out = OpSupport.empty(Shape.of(b, n, heads * d), qkv.dtype(), qkv.backend());
    Tensor lse = OpSupport.empty(Shape.of(b, heads, n), DType.F32, qkv.backend());
    Tensor outHeads = heads(out, 0, heads, d);
    fa.forward(q, k, v, null, spec, outHeads, lse);
    Tensor saved = outHeads.detach();
    return Autograd.recordSaving("packed_attention", out, Autograd.saving(qkv, saved, lse), g -> {
      if (g.stride(2) != 1) g = Views.contiguous(g);
      Tensor gqkv = OpSupport.empty(qkv.shape(), qkv.dtype(), qkv.backend());
      fa.backward(heads(g, 0, heads, d), q, k, v, null, saved, lse, spec,
          heads(gqkv, 0, heads, d), heads(gqkv, 1, heads, d), heads(gqkv, 2, heads, d), null);
      return new Tensor[] {gqkv};
    }, qkv);
  }
}
