package io.colossal4j.backend.cuda;

import static io.colossal4j.backend.cuda.CudaTestSupport.gpu;
import static io.colossal4j.backend.cuda.CudaTestSupport.nearScaled;
import static io.colossal4j.backend.cuda.CudaTestSupport.random;
import static io.colossal4j.backend.cuda.CudaTestSupport.toGpu;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.backend.FusedAttention.Spec;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * cuDNN's fused attention (through our backend-API graphs) against our own kernel (third generation), which is
 * itself checked against the f32 composite in {@code CudaFusedKernelsTest}: the forward's output and row
 * log-sum-exp and the three gradients, on the model shapes (ViT-H's 577 tokens × 80 through strided views of a
 * packed qkv, GPT's causal 1024 × 64), causal with nq ≠ nk, f16. Each case must have run on cuDNN (no fallback),
 * and a cuDNN forward followed by our backward must give our gradients (the log-sum-exp they share means the same).
 */
class CudnnAttentionTest {
  private final Random rnd = new Random(5);

  record Case(int b, int h, int nq, int nk, int d, boolean causal, DType dtype, boolean packed) {}

  @Test void cudnnAgreesWithOurKernelOnModelShapes() {
    CudaKernels kernels = (CudaKernels) gpu().kernels();
    CudnnAttention cudnn = new CudnnAttention(kernels, new CudaAttention(kernels, CudaAttention.Variant.WIDE));
    System.out.println("[cudnn] " + cudnn.describe());
    org.junit.jupiter.api.Assumptions.assumeFalse(cudnn.describe().startsWith("cuDNN unavailable"), cudnn::describe);
    CudaAttention ours = new CudaAttention(kernels, CudaAttention.Variant.WIDE);
    Case[] cases = {
        new Case(2, 16, 577, 577, 80, false, DType.BF16, true),
        new Case(2, 4, 1024, 1024, 64, true, DType.BF16, false),
        new Case(1, 2, 100, 160, 64, true, DType.BF16, false),
        new Case(2, 3, 77, 77, 64, false, DType.F16, true),
        new Case(1, 2, 200, 150, 128, false, DType.BF16, false)};
    try {
      for (Case c : cases) {
        Tensor[] in = operands(rnd, c);
        Spec spec = new Spec(1 / Math.sqrt(c.d()), c.causal(), 0, 0, 0);
        Tensor[] a = run(cudnn, cudnn, in, spec), b = run(ours, ours, in, spec), mixed = run(cudnn, ours, in, spec);
        String[] names = {"out", "lse", "dq", "dk", "dv"};
        // both round P and dS to the 16-bit type before their products and accumulate in f32; they differ in
        // summation order and in where the rounding of P happens, a few 16-bit ulps of the largest value (1e-2)
        for (int i = 0; i < names.length; i++) nearScaled(c + " " + names[i], b[i], a[i], 1e-2);
        // our backward from cuDNN's forward: the shared log-sum-exp means the same thing
        for (int i = 2; i < names.length; i++) nearScaled(c + " mixed " + names[i], b[i], mixed[i], 1e-2);
        long[] calls = cudnn.calls();
        assertEquals(0, calls[1], c + ": fell back to our kernel: " + cudnn.refusal());
      }
      assertTrue(cudnn.calls()[0] >= 3 * cases.length, "every case ran forward twice and backward once on cuDNN");
    } finally {
      cudnn.close();
    }
  }

  /** q, k, v and dO; with {@code packed}, q/k/v are strided [B, H, N, D] views of one [B, N, 3·H·D] buffer. */
  static Tensor[] operands(Random rnd, Case c) {
    Tensor q, k, v;
    if (c.packed()) {
      Tensor all = toGpu(random(rnd, Shape.of(c.b(), c.nq(), 3 * c.h() * c.d()), c.dtype(), -1, 1));
      long row = 3L * c.h() * c.d();
      long[] st = {c.nq() * row, c.d(), row, 1};
      Shape s = Shape.of(c.b(), c.h(), c.nq(), c.d());
      q = all.view(s, st, 0);
      k = all.view(s, st, (long) c.h() * c.d());
      v = all.view(s, st, 2L * c.h() * c.d());
    } else {
      q = toGpu(random(rnd, Shape.of(c.b(), c.h(), c.nq(), c.d()), c.dtype(), -1, 1));
      k = toGpu(random(rnd, Shape.of(c.b(), c.h(), c.nk(), c.d()), c.dtype(), -1, 1));
      v = toGpu(random(rnd, Shape.of(c.b(), c.h(), c.nk(), c.d()), c.dtype(), -1, 1));
    }
    Tensor go = toGpu(random(rnd, Shape.of(c.b(), c.h(), c.nq(), c.d()), c.dtype(), -1, 1));
    return new Tensor[] {q, k, v, go};
  }

  /** Forward with {@code fwd}, backward with {@code bwd}: out, lse, dq, dk, dv. */
  static Tensor[] run(io.colossal4j.backend.FusedAttention fwd, io.colossal4j.backend.FusedAttention bwd, Tensor[] in, Spec spec) {
    Tensor q = in[0], k = in[1], v = in[2], go = in[3];
    Tensor o = Tensor.empty(q.shape(), q.dtype(), gpu());
    Tensor lse = Tensor.empty(Shape.of(q.size(0), q.size(1), q.size(2)), DType.F32, gpu());
    Tensor gq = Tensor.empty(q.shape(), q.dtype(), gpu()), gk = Tensor.empty(k.shape(), k.dtype(), gpu()), gv = Tensor.empty(v.shape(), v.dtype(), gpu());
    fwd.forward(q, k, v, null, spec, o, lse);
    bwd.backward(go, q, k, v, null, o, lse, spec, gq, gk, gv, null);
    return new Tensor[] {o, lse, gq, gk, gv};
  }

}
