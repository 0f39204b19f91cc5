package io.colossal4j.testing;

import io.colossal4j.autograd.Autograd;
import io.colossal4j.autograd.GradMode;
import io.colossal4j.backend.FusedAttention;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.ops.Attention;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Tensor;

/**
 * A stand-in for a device's fused attention kernel, for memory tests on the CPU: any dtype, strided outputs
 * (as the CUDA kernel), and, like a flash kernel, no memory of its own on the calling backend. It computes
 * with the composite ({@link Attention#scaledDotProductAttention}) in f32 on a private CPU backend and
 * copies the results into the caller's outputs, so a memory trace of the caller's step sees exactly what a
 * fused kernel leaves behind: the output and the f32 log-sum-exp its op allocates, nothing else.
 */
public final class OffDeviceAttention implements FusedAttention {
  private final CpuBackend scratch = CpuBackend.create(1);

  @Override public boolean supports(Tensor q, Tensor k, Tensor v, Tensor bias, Spec spec) { return bias == null && spec.dropoutP() == 0; }

  @Override public boolean writesStridedOutputs() { return true; }

  @Override public void forward(Tensor q, Tensor k, Tensor v, Tensor bias, Spec spec, Tensor out, Tensor logSumExp) {
    Tensor y = GradMode.noGrad(() -> run(local(q), local(k), local(v), spec));
    out.backend().kernels().copy(y, out);
    logSumExp.backend().kernels().fill(logSumExp, 0);   // allocated by the op as the real kernel's is; this backward recomputes
  }

  @Override public void backward(Tensor gOut, Tensor q, Tensor k, Tensor v, Tensor bias, Tensor out, Tensor logSumExp, Spec spec,
                                 Tensor gq, Tensor gk, Tensor gv, Tensor gBias) {
    Tensor[] leaves = {local(q).requiresGrad(true), local(k).requiresGrad(true), local(v).requiresGrad(true)};
    Tensor y = GradMode.withGrad(() -> run(leaves[0], leaves[1], leaves[2], spec));
    Autograd.backward(y, local(gOut), false);
    Tensor[] outs = {gq, gk, gv};
    for (int i = 0; i < 3; i++) outs[i].backend().kernels().copy(leaves[i].grad(), outs[i]);
  }

  private Tensor run(Tensor q, Tensor k, Tensor v, Spec spec) {
    return Attention.scaledDotProductAttention(q, k, v, Attention.Options.DEFAULT.withCausal(spec.causal()).withScale(spec.scale()));
  }

  /** An f32 copy of t on the private backend. */
  private Tensor local(Tensor t) { return Tensor.of(t.toDoubleArray(), t.shape(), DType.F32, scratch); }
}
