package io.colossal4j.ops;

import io.colossal4j.autograd.Autograd;
import io.colossal4j.autograd.GradMode;
import io.colossal4j.backend.FusedAttention;
import io.colossal4j.tensor.Rng;
import io.colossal4j.tensor.Tensor;

/**
 * A stand-in fused kernel for testing the seam: it computes with the composite (forward under no-grad,
 * backward by recomputing on fresh leaves), so any difference from calling the composite directly comes
 * from the dispatch, the spec it is handed (scale, causal, dropout stream position) or the gradient wiring.
 */
final class ReferenceFusedAttention implements FusedAttention {
  int forwards, backwards;
  boolean accept = true;

  @Override public boolean supports(Tensor q, Tensor k, Tensor v, Tensor bias, Spec spec) { return accept; }

  @Override public void forward(Tensor q, Tensor k, Tensor v, Tensor bias, Spec spec, Tensor out, Tensor logSumExp) {
    forwards++;
    Tensor y = GradMode.noGrad(() -> run(q, k, v, bias, spec));
    out.backend().kernels().copy(y, out);
    logSumExp.backend().kernels().fill(logSumExp, 0); // unused by this stand-in's backward
  }

  @Override public void backward(Tensor gOut, Tensor q, Tensor k, Tensor v, Tensor bias, Tensor out, Tensor logSumExp, Spec spec,
                                 Tensor gq, Tensor gk, Tensor gv, Tensor gBias) {
    backwards++;
    Tensor[] leaves = {q.detach().requiresGrad(true), k.detach().requiresGrad(true), v.detach().requiresGrad(true),
        bias == null ? null : bias.detach().requiresGrad(true)};
    Tensor y = GradMode.withGrad(() -> run(leaves[0], leaves[1], leaves[2], leaves[3], spec));
    Autograd.backward(y, gOut, false);
    Tensor[] outs = {gq, gk, gv, gBias};
    for (int i = 0; i < 4; i++) if (outs[i] != null) outs[i].backend().kernels().copy(leaves[i].grad(), outs[i]);
  }

  private static Tensor run(Tensor q, Tensor k, Tensor v, Tensor bias, Spec spec) {
    Tensor allowed = spec.causal() ? Attention.causalMask(q.size(-2), k.size(-2), q) : null;
    Rng rng = spec.dropoutP() > 0 ? Rng.of(new Rng.State(spec.seed(), spec.offset())) : null;
    return Attention.composite(q, k, v, spec.scale(), bias, allowed, spec.dropoutP(), rng);
  }
}
