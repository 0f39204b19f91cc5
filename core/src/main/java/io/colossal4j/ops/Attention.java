package io.colossal4j.ops;

import io.colossal4j.autograd.Autocast;
import io.colossal4j.autograd.Autograd;
import io.colossal4j.backend.BinaryOp;
import io.colossal4j.backend.FusedAttention;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Rng;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;
import java.util.Arrays;
import java.util.Optional;

/**
 * Scaled dot-product attention, one entry point for every variant the model zoo needs (ViT, GPT, Swin
 * V1/V2): softmax(q·kᵀ·scale + bias + mask) · v, with causal masking, cosine attention and dropout.
 *
 * <p>Shapes: q [..., Nq, D], k [..., Nk, D], v [..., Nk, Dv], usually [B, H, N, D]; batch dims broadcast.
 * The result is [..., Nq, Dv]. Legend for locals: B batch, H heads, Nq/Nk query/key tokens, D head dim.
 *
 * <p>The reference is {@link #composite}, built from matmul, softmax and dropout ops (so autograd comes
 * from them). A backend with a fused kernel ({@link io.colossal4j.backend.Kernels#fusedAttention()}) is
 * used instead when it {@linkplain FusedAttention#supports supports} the call; boolean masks always take
 * the composite, whose fully-masked-row rule (below) is part of this op's contract.
 */
public final class Attention {
  private Attention() {}

  /** Swin V2 clamps the learnable log logit scale at log(1/0.01) = log(100) before exponentiating. */
  public static final double MAX_LOG_LOGIT_SCALE = Math.log(100);

  /** F.normalize's epsilon: vectors are divided by max(‖x‖₂, 1e-12). */
  static final double NORMALIZE_EPS = 1e-12;

  /** An attention mask, broadcastable to [..., Nq, Nk]. */
  public sealed interface Mask {
    /**
     * Bool, true where query i may attend to key j (PyTorch's boolean attn_mask). A query row with no
     * visible key yields zeros rather than NaN (PyTorch's math backend does the same since 2.5), and
     * contributes no gradient.
     */
    record Allowed(Tensor allowed) implements Mask {}

    /** Floating values added to the logits (e.g. −100 or −inf between Swin's shifted windows). */
    record Additive(Tensor values) implements Mask {}
  }

  /**
   * Options of one call. {@code mask} and {@code bias} may be null; {@code scale} null means 1/sqrt(D);
   * {@code logitScale} non-null selects cosine attention (Swin V2): q and k are L2-normalised along D and
   * the logits are multiplied by exp(min(logitScale, log 100)), with logitScale broadcastable to the
   * per-head shape [..., 1, 1] (Swin's parameter is [H, 1, 1]); it excludes {@code scale}. Dropout with
   * probability {@code dropoutP} is applied to the attention probabilities with numbers from {@code rng}.
   */
  public record Options(Mask mask, Tensor bias, boolean causal, Double scale, Tensor logitScale, double dropoutP, Rng rng) {
    public static final Options DEFAULT = new Options(null, null, false, null, null, 0, null);

    public Options {
      if (!(dropoutP >= 0 && dropoutP < 1)) throw new TensorException("attention: dropout probability must be in [0, 1), got " + dropoutP);
      if (dropoutP > 0 && rng == null) throw new TensorException("attention: dropout " + dropoutP + " needs an Rng stream, got null");
      if (scale != null && !(scale > 0 && Double.isFinite(scale))) throw new TensorException("attention: scale must be finite and > 0, got " + scale);
      if (scale != null && logitScale != null)
        throw new TensorException("attention: cosine attention (logitScale) sets its own scale; do not also give scale=" + scale);
      if (mask instanceof Mask.Allowed(Tensor m) && m.dtype() != DType.BOOL)
        throw new TensorException("attention: a boolean mask must be bool, got " + m.dtype() + "; use Mask.Additive for additive masks");
      if (mask instanceof Mask.Additive(Tensor m) && !m.dtype().isFloating())
        throw new TensorException("attention: an additive mask must be floating, got " + m.dtype() + "; use Mask.Allowed for boolean masks");
    }

    public Options withMask(Mask m) { return new Options(m, bias, causal, scale, logitScale, dropoutP, rng); }

    public Options withBias(Tensor b) { return new Options(mask, b, causal, scale, logitScale, dropoutP, rng); }

    public Options withCausal(boolean c) { return new Options(mask, bias, c, scale, logitScale, dropoutP, rng); }

    public Options withScale(double s) { return new Options(mask, bias, causal, s, logitScale, dropoutP, rng); }

    public Options withCosine(Tensor logScale) { return new Options(mask, bias, causal, scale, logScale, dropoutP, rng); }

    public Options withDropout(double p, Rng r) { return new Options(mask, bias, causal, scale, logitScale, p, r); }
  }

  public static Tensor scaledDotProductAttention(Tensor q, Tensor k, Tensor v) {
    return scaledDotProductAttention(q, k, v, Options.DEFAULT);
  }

  public static Tensor scaledDotProductAttention(Tensor q, Tensor k, Tensor v, Options o) {
    q = Arith.cast(q, Autocast.target(q.dtype()));  // identity unless an Autocast region is active
    k = Arith.cast(k, Autocast.target(k.dtype()));
    v = Arith.cast(v, Autocast.target(v.dtype()));
    return attend(q, k, v, o, q.backend().kernels().fusedAttention());
  }

  /** The dispatch, with the fused kernel passed in (tests give one explicitly). */
  static Tensor attend(Tensor q, Tensor k, Tensor v, Options o, Optional<FusedAttention> fused) {
    Shape logitsShape = validate(q, k, v, o);
    Tensor qs = q, ks = k;
    double scale = o.scale() != null ? o.scale() : 1 / Math.sqrt(q.size(-1));
    if (o.logitScale() != null) {
      // cosine attention as plain attention: cos(q, k)·s_h = (q̂·s_h)·k̂ with scale 1
      Tensor headScale = Arith.exp(clampMax(o.logitScale(), MAX_LOG_LOGIT_SCALE));
      qs = Arith.mul(normalize(q), headScale);
      ks = normalize(k);
      scale = 1;
    }
    Tensor bias = o.bias();
    if (o.mask() instanceof Mask.Additive(Tensor m)) bias = bias == null ? m : Arith.add(bias, m);
    if (fused.isPresent() && !(o.mask() instanceof Mask.Allowed)) {
      Tensor out = tryFused(fused.get(), qs, ks, v, bias, scale, logitsShape, o);
      if (out != null) return out;
    }
    Tensor allowed = allowed(o, q.size(-2), k.size(-2), q);
    return composite(qs, ks, v, scale, bias, allowed, o.dropoutP(), o.rng());
  }

  /**
   * The reference: p = softmax(q·kᵀ·scale + bias, masked), rows without a visible key set to zero,
   * dropout on p, then p·v. {@code allowed} is a bool mask broadcastable to the logits, or null.
   */
  static Tensor composite(Tensor q, Tensor k, Tensor v, double scale, Tensor bias, Tensor allowed, double dropoutP, Rng rng) {
    Tensor logits = LinAlg.matmul(q, Views.transpose(k, -2, -1));
    if (scale != 1) logits = Arith.mulScalar(logits, scale);
    if (bias != null) logits = Arith.add(logits, bias);
    Tensor anyVisible = null;
    if (allowed != null) {
      anyVisible = Arith.compareScalar(BinaryOp.GT, Reduce.amax(Arith.cast(allowed, DType.F32), true, -1), 0.5);
      // a row with no visible key is unmasked (finite softmax, finite gradients) and zeroed after the softmax
      Tensor visible = Arith.where(anyVisible, allowed, Tensor.scalar(1, DType.BOOL, q.backend()));
      logits = Arith.where(visible, logits, Tensor.scalar(Double.NEGATIVE_INFINITY, logits.dtype(), q.backend()));
    }
    Tensor p = Softmax.softmax(logits, -1);
    if (anyVisible != null) p = Arith.where(anyVisible, p, Tensor.scalar(0, p.dtype(), q.backend()));
    if (dropoutP > 0) p = Dropout.dropout(p, dropoutP, rng, true);
    return LinAlg.matmul(p, v);
  }

  /** The fused kernel's result with its backward recorded, or null when it does not support the call. */
  private static Tensor tryFused(FusedAttention fa, Tensor q, Tensor k, Tensor v, Tensor bias, double scale, Shape logitsShape, Options o) {
    Shape batch = Shape.of(Arrays.copyOf(logitsShape.toArray(), logitsShape.rank() - 2));
    Tensor qb = OpSupport.broadcastView(q, append(batch, q.size(-2), q.size(-1)));
    Tensor kb = OpSupport.broadcastView(k, append(batch, k.size(-2), k.size(-1)));
    Tensor vb = OpSupport.broadcastView(v, append(batch, v.size(-2), v.size(-1)));
    long seed = o.rng() == null ? 0 : o.rng().seed(), offset = o.rng() == null ? 0 : o.rng().counter();
    FusedAttention.Spec spec = new FusedAttention.Spec(scale, o.causal(), o.dropoutP(), seed, offset);
    if (!fa.supports(qb, kb, vb, bias, spec)) return null;
    if (o.dropoutP() > 0) o.rng().take(logitsShape.numel()); // the same numbers the composite's dropout would take
    Tensor out = OpSupport.empty(append(batch, q.size(-2), v.size(-1)), DType.promote(q.dtype(), v.dtype()), q.backend());
    int[] lseDims = Arrays.copyOf(logitsShape.toArray(), logitsShape.rank() - 1);
    Tensor lse = OpSupport.empty(Shape.of(lseDims), DType.F32, q.backend());
    fa.forward(qb, kb, vb, bias, spec, out, lse);
    Tensor saved = out.detach();
    return Autograd.recordSaving("fused_attention", out, Autograd.saving(qb, kb, vb, bias, saved, lse), g -> {
      Tensor gq = OpSupport.emptyLike(qb), gk = OpSupport.emptyLike(kb), gv = OpSupport.emptyLike(vb);
      Tensor gb = bias == null ? null : OpSupport.empty(bias.shape(), bias.dtype(), bias.backend());
      fa.backward(g, qb, kb, vb, bias, saved, lse, spec, gq, gk, gv, gb);
      return new Tensor[] {OpSupport.sumToShape(gq, q.shape()), OpSupport.sumToShape(gk, k.shape()), OpSupport.sumToShape(gv, v.shape()), gb};
    }, q, k, v, bias);
  }

  /** The boolean mask combined with the causal mask (key j visible from query i iff j <= i), or null if neither. */
  private static Tensor allowed(Options o, int nq, int nk, Tensor like) {
    Tensor user = o.mask() instanceof Mask.Allowed(Tensor m) ? m : null;
    if (!o.causal()) return user;
    Tensor causal = causalMask(nq, nk, like);
    return user == null ? causal : Arith.where(causal, user, Tensor.scalar(0, DType.BOOL, like.backend()));
  }

  /** Bool [nq, nk], true where j <= i (top-left aligned, as PyTorch's is_causal). */
  static Tensor causalMask(int nq, int nk, Tensor like) {
    double[] tril = new double[nq * nk];
    for (int i = 0; i < nq; i++) for (int j = 0; j <= Math.min(i, nk - 1); j++) tril[i * nk + j] = 1;
    return Tensor.of(tril, Shape.of(nq, nk), DType.BOOL, like.backend());
  }

  /**
   * x / max(‖x‖₂, eps) along the last dim (F.normalize), written as x / sqrt(max(Σx², eps²)): the same
   * values, but the clamp comes before the square root, so a zero vector (a zero-padded token) gets the
   * finite gradient g/eps, as in PyTorch, instead of 0·∞ = NaN.
   */
  static Tensor normalize(Tensor x) {
    Tensor sumSq = Reduce.sum(Arith.square(x), true, -1);
    Tensor eps2 = Tensor.scalar(NORMALIZE_EPS * NORMALIZE_EPS, x.dtype(), x.backend());
    return Arith.div(x, Arith.sqrt(Arith.maximum(sumSq, eps2)));
  }

  /** min(x, max) with torch.clamp's gradient: passed through where x <= max, zero above. */
  private static Tensor clampMax(Tensor x, double max) {
    return Arith.where(Arith.compareScalar(BinaryOp.LE, x, max), x, Tensor.scalar(max, x.dtype(), x.backend()));
  }

  /** Checks operand shapes and dtypes; returns the logits' shape [..., Nq, Nk]. */
  private static Shape validate(Tensor q, Tensor k, Tensor v, Options o) {
    String op = "scaledDotProductAttention";
    for (Tensor t : new Tensor[] {q, k, v}) {
      OpSupport.requireFloating(op, t);
      if (t.rank() < 2) throw new TensorException(op + ": q, k, v must be [..., N, D], got " + q.shape() + ", " + k.shape() + ", " + v.shape());
    }
    if (q.size(-1) != k.size(-1) || k.size(-2) != v.size(-2))
      throw new TensorException(op + ": q " + q.shape() + ", k " + k.shape() + ", v " + v.shape()
          + " must be [..., Nq, D], [..., Nk, D], [..., Nk, Dv] (q and k share D, k and v share Nk)");
    Shape batch = Shape.broadcast(op, Shape.broadcast(op, batchOf(q), batchOf(k)), batchOf(v));
    Shape logits = append(batch, q.size(-2), k.size(-2));
    if (o.bias() != null) requireBroadcastsTo(op + " bias", o.bias(), logits);
    if (o.mask() instanceof Mask.Allowed(Tensor m)) requireBroadcastsTo(op + " mask", m, logits);
    if (o.mask() instanceof Mask.Additive(Tensor m)) requireBroadcastsTo(op + " mask", m, logits);
    if (o.logitScale() != null) requireBroadcastsTo(op + " logitScale", o.logitScale(), append(batch, 1, 1));
    return logits;
  }

  private static void requireBroadcastsTo(String what, Tensor t, Shape target) {
    Shape b = Shape.broadcast(what, t.shape(), target);
    if (!b.equals(target)) throw new TensorException(what + " " + t.shape() + " does not broadcast to " + target);
  }

  private static Shape batchOf(Tensor t) { return Shape.of(Arrays.copyOf(t.shape().toArray(), t.rank() - 2)); }

  private static Shape append(Shape s, int m, int n) {
    int[] d = Arrays.copyOf(s.toArray(), s.rank() + 2);
    d[s.rank()] = m;
    d[s.rank() + 1] = n;
    return Shape.of(d);
  }
}
