package io.colossal4j.backend;

import io.colossal4j.tensor.Tensor;

/**
 * An optional fused scaled-dot-product-attention kernel (flash attention, cuDNN's fused attention). A
 * backend offers one through {@link Kernels#fusedAttention()}; the op {@code ops.Attention} uses it when
 * {@link #supports} says so and otherwise composes matmul, softmax and dropout, which stays the reference
 * every fused kernel is tested against.
 *
 * <p>Operands: q [..., Nq, D], k [..., Nk, D], v [..., Nk, Dv] with equal (already broadcast) batch dims;
 * {@code bias} (nullable) is an additive term broadcastable to [..., Nq, Nk] (relative position bias and
 * additive masks, summed). The kernel computes softmax(q·kᵀ·scale + bias, causal) with dropout drawn from
 * the Philox stream (seed, offset) exactly as {@code Kernels.uniform} would for a tensor of the
 * probabilities' shape, then multiplies by v. Causal masking is top-left aligned (key j is visible from
 * query i when j <= i), as PyTorch's {@code is_causal}.
 */
public interface FusedAttention {
  /** Everything about one call except the tensors. */
  record Spec(double scale, boolean causal, double dropoutP, long seed, long offset) {}

  /** Whether this kernel handles these operands (dtypes, head dims, bias layout); if not the op composes. */
  boolean supports(Tensor q, Tensor k, Tensor v, Tensor bias, Spec spec);

  /** Writes out [..., Nq, Dv] and, for the backward, the row log-sum-exp of the scaled logits (f32 [..., Nq]). */
  void forward(Tensor q, Tensor k, Tensor v, Tensor bias, Spec spec, Tensor out, Tensor logSumExp);

  /**
   * Writes gq, gk, gv (the operands' shapes) and, when non-null, gBias in the bias's own (possibly
   * broadcast) shape, summed over the dims it was broadcast along. Outputs are overwritten.
   */
  void backward(Tensor gOut, Tensor q, Tensor k, Tensor v, Tensor bias, Tensor out, Tensor logSumExp, Spec spec,
                Tensor gq, Tensor gk, Tensor gv, Tensor gBias);

  /**
   * Whether {@link #forward}'s {@code out} and {@link #backward}'s gq, gk, gv may be strided views (unit
   * stride along the last dim), so an op can have results written straight into a packed layout.
   */
  default boolean writesStridedOutputs() { return false; }
}
