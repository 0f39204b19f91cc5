package io.colossal4j.backend.cuda;

import static io.colossal4j.backend.cuda.CudaTestSupport.CPU;
import static io.colossal4j.backend.cuda.CudaTestSupport.gpu;
import static io.colossal4j.backend.cuda.CudaTestSupport.nearScaled;
import static io.colossal4j.backend.cuda.CudaTestSupport.random;
import static io.colossal4j.backend.cuda.CudaTestSupport.toGpu;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.autograd.Autograd;
import io.colossal4j.backend.AdamUpdate;
import io.colossal4j.ops.Arith;
import io.colossal4j.ops.Attention;
import io.colossal4j.ops.PackedAttention;
import io.colossal4j.ops.Reduce;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The fused kernels of the CUDA backend against their references: fused attention against the composite
 * (matmul, softmax, matmul) run in f32 on the scalar CPU backend from the same 16-bit inputs, forward and
 * gradients; the fused Adam step against the scalar reference step; device-side index checks.
 */
class CudaFusedKernelsTest {
  private final Random rnd = new Random(11);

  /** One attention case: batch, heads, query and key tokens, head dim, causal, dtype, q/k/v sliced from one qkv buffer. */
  private record Case(int b, int h, int nq, int nk, int d, boolean causal, DType dtype, boolean packed) {}

  @Test void fusedAttentionMatchesTheCompositeForwardAndBackward() {
    List<Case> cases = List.of(
        new Case(2, 3, 100, 100, 64, false, DType.BF16, false),
        new Case(1, 2, 77, 77, 80, true, DType.BF16, true),
        new Case(2, 2, 130, 70, 32, false, DType.BF16, false),
        new Case(1, 2, 65, 129, 128, true, DType.BF16, false),
        new Case(2, 2, 96, 96, 96, true, DType.F16, true),
        new Case(1, 1, 5, 3, 64, false, DType.F16, false),
        // several 128-row blocks of the third generation, partial last blocks, causal with nq != nk
        new Case(1, 2, 300, 300, 64, true, DType.BF16, false),
        new Case(1, 2, 260, 200, 80, false, DType.F16, false),
        new Case(1, 1, 200, 150, 80, true, DType.BF16, false));
    for (Case c : cases) checkAttention(c);
  }

  private void checkAttention(Case c) {
    Tensor[] ref = new Tensor[3], dev = new Tensor[3];
    if (c.packed()) {
      // q, k, v as strided views of one [B, N, 3, H, D] projection, as a fused qkv linear layer produces them
      Tensor all = random(rnd, Shape.of(c.b(), c.nq(), 3 * c.h() * c.d()), c.dtype(), -1, 1);
      Tensor allDev = toGpu(all);
      long row = 3L * c.h() * c.d();
      for (int i = 0; i < 3; i++) {
        long[] st = {c.nq() * row, c.d(), row, 1};
        Shape s = Shape.of(c.b(), c.h(), c.nq(), c.d());
        ref[i] = f32(all.view(s, st, (long) i * c.h() * c.d()));
        dev[i] = allDev.view(s, st, (long) i * c.h() * c.d()).requiresGrad(true);
      }
    } else {
      int[] n = {c.nq(), c.nk(), c.nk()};
      for (int i = 0; i < 3; i++) {
        Tensor x = random(rnd, Shape.of(c.b(), c.h(), n[i], c.d()), c.dtype(), -1, 1);
        ref[i] = f32(x);
        dev[i] = toGpu(x).requiresGrad(true);
      }
    }
    for (Tensor r : ref) r.requiresGrad(true);
    Attention.Options o = Attention.Options.DEFAULT.withCausal(c.causal());
    Tensor weights = random(rnd, Shape.of(c.b(), c.h(), c.nq(), c.d()), DType.F32, -1, 1);
    Tensor yRef = Attention.scaledDotProductAttention(ref[0], ref[1], ref[2], o);
    Autograd.backward(Reduce.sum(Arith.mul(yRef, weights)));
    Tensor y = Attention.scaledDotProductAttention(dev[0], dev[1], dev[2], o);
    assertEquals("fused_attention", y.gradFn().name(), c + ": the fused kernel should take this call");
    Autograd.backward(Reduce.sum(Arith.mul(Arith.cast(y, DType.F32), toGpu(weights))));
    // 16-bit rounding of the probabilities, dS and the stored results: 2^-8 (bf16) or 2^-11 (f16) relative
    // per value, summed over ~N terms of mixed sign; measured against the largest reference magnitude
    double tol = c.dtype() == DType.BF16 ? 2e-2 : 4e-3;
    nearScaled(c + " out", yRef, y, tol);
    String[] names = {"dq", "dk", "dv"};
    if (c.packed()) {
      for (int i = 0; i < 3; i++) nearScaled(c + " " + names[i], ref[i].grad(), dev[i].grad(), tol);
    } else {
      for (int i = 0; i < 3; i++) nearScaled(c + " " + names[i], ref[i].grad(), dev[i].grad(), tol);
    }
  }

  /**
   * Self-attention from a packed qkv projection: the fused kernel reads q, k, v as strided views of qkv and
   * writes the heads straight into [B, N, H·D] (and the gradient straight into the packed [B, N, 3·H·D]),
   * against the composite reference on the CPU in f32 from the same bf16 values (an unwritten head or
   * gradient slice would hold whatever the allocator's block held before, and differ from the reference).
   */
  @Test void packedSelfAttentionWritesHeadsInPlace() {
    for (boolean causal : new boolean[] {false, true}) {
      int b = 2, n = 77, heads = 2, d = 64;
      Tensor qkv = random(rnd, Shape.of(b, n, 3 * heads * d), DType.BF16, -1, 1);
      Tensor ref = f32(qkv).requiresGrad(true), dev = toGpu(qkv).requiresGrad(true);
      Attention.Options o = Attention.Options.DEFAULT.withCausal(causal);
      Tensor weights = random(rnd, Shape.of(b, n, heads * d), DType.F32, -1, 1);
      Tensor yRef = PackedAttention.selfAttention(ref, heads, o);
      Autograd.backward(Reduce.sum(Arith.mul(yRef, weights)));
      Tensor y = PackedAttention.selfAttention(dev, heads, o);
      assertEquals("packed_attention", y.gradFn().name(), "the fused kernel should take the packed call");
      Autograd.backward(Reduce.sum(Arith.mul(Arith.cast(y, DType.F32), toGpu(weights))));
      // as fusedAttentionMatchesTheCompositeForwardAndBackward: bf16 rounding of P, dS and the results
      nearScaled("packed causal=" + causal + " out", yRef, y, 2e-2);
      nearScaled("packed causal=" + causal + " dqkv", ref.grad(), dev.grad(), 2e-2);
    }
  }

  @Test void everyKernelGenerationAgrees() {
    CudaKernels kernels = (CudaKernels) gpu().kernels();
    for (boolean causal : new boolean[] {false, true}) {
      Tensor q = toGpu(random(rnd, Shape.of(2, 3, 150, 80), DType.BF16, -1, 1)), k = toGpu(random(rnd, Shape.of(2, 3, 150, 80), DType.BF16, -1, 1));
      Tensor v = toGpu(random(rnd, Shape.of(2, 3, 150, 80), DType.BF16, -1, 1)), go = toGpu(random(rnd, Shape.of(2, 3, 150, 80), DType.BF16, -1, 1));
      var spec = new io.colossal4j.backend.FusedAttention.Spec(0.11, causal, 0, 0, 0);
      Tensor[][] res = new Tensor[CudaAttention.Variant.values().length][];
      for (CudaAttention.Variant variant : CudaAttention.Variant.values()) {
        var fa = new CudaAttention(kernels, variant);
        Tensor o = Tensor.empty(q.shape(), DType.BF16, gpu()), lse = Tensor.empty(Shape.of(2, 3, 150), DType.F32, gpu());
        Tensor gq = Tensor.empty(q.shape(), DType.BF16, gpu()), gk = Tensor.empty(q.shape(), DType.BF16, gpu()), gv = Tensor.empty(q.shape(), DType.BF16, gpu());
        fa.forward(q, k, v, null, spec, o, lse);
        fa.backward(go, q, k, v, null, o, lse, spec, gq, gk, gv, null);
        res[variant.ordinal()] = new Tensor[] {o, lse, gq, gk, gv};
      }
      // the same math with the same roundings to bf16; only f32 summation orders differ (dQ, the softmax sums)
      String[] names = {"out", "lse", "dq", "dk", "dv"};
      for (int g = 1; g < res.length; g++)
        for (int i = 0; i < names.length; i++)
          nearScaled(CudaAttention.Variant.values()[g] + " causal=" + causal + " " + names[i], res[0][i], res[g][i], 1e-2);
    }
  }

  @Test void autocastSendsF32AttentionThroughTheFusedKernel() {
    Tensor q = toGpu(random(rnd, Shape.of(2, 2, 40, 64), DType.F32, -1, 1)).requiresGrad(true);
    Tensor y = io.colossal4j.autograd.Autocast.call(DType.BF16, () -> Attention.scaledDotProductAttention(q, q, q));
    assertEquals(DType.BF16, y.dtype());
    assertEquals("fused_attention", y.gradFn().name());
    Autograd.backward(Reduce.sum(Arith.cast(y, DType.F32)));
    assertEquals(DType.F32, q.grad().dtype(), "the f32 leaf gets an f32 gradient through the recorded casts");
  }

  private static Tensor f32(Tensor x) {
    Tensor t = Tensor.empty(x.shape(), DType.F32, CPU);
    CPU.kernels().copy(x, t);
    return t;
  }



  /**
   * The multi-tensor sum of squares (16 tensors per launch) against sums in double on the host: 18 tensors (two
   * launches), sizes 0, 1, 7 and a million and more, bf16 / f16 / f32, one contiguous view at an odd offset (the
   * unaligned scalar path). f32 squares and per-thread f32 sums of at most a few hundred terms, then f64: relative
   * error a few f32 ulps, 1e-5 allows for that with margin; a skipped or doubled tensor is off by far more.
   */
  @Test void sumOfSquaresMatchesTheHostSums() {
    List<Tensor> host = new java.util.ArrayList<>(), dev = new java.util.ArrayList<>();
    int[] sizes = {0, 1, 7, 1_000_003, 4096, 33, 250_000, 8, 9};
    DType[] types = {DType.BF16, DType.F16, DType.F32};
    for (int i = 0; i < 17; i++) {
      Tensor t = random(rnd, Shape.of(sizes[i % sizes.length]), types[i % 3], -2, 2);
      host.add(t);
      dev.add(toGpu(t));
    }
    Tensor wholeHost = random(rnd, Shape.of(1003), DType.BF16, -2, 2);
    host.add(wholeHost.view(Shape.of(1000), new long[] {1}, 3));
    dev.add(toGpu(wholeHost).view(Shape.of(1000), new long[] {1}, 3));
    Tensor slots = Tensor.empty(Shape.of(dev.size()), DType.F64, gpu());
    gpu().kernels().sumOfSquares(dev, slots);
    double[] got = slots.toDoubleArray();
    for (int i = 0; i < host.size(); i++) {
      double want = 0;
      for (double v : host.get(i).toDoubleArray()) want += v * v;
      assertEquals(want, got[i], 1e-5 * Math.max(want, 1e-30), "tensor " + i + " " + host.get(i).shape() + " " + host.get(i).dtype());
    }
  }

  @Test void adamStepMatchesTheReferenceStep() {
    for (boolean decoupled : new boolean[] {true, false})
      for (DType dtype : List.of(DType.F32, DType.BF16)) {
        AdamUpdate u = new AdamUpdate(1e-2, 0.9, 0.999, 1e-8, 0.1, decoupled, 3);
        Shape[] shapes = {Shape.of(1000), Shape.of(33, 7), Shape.of(1)};
        List<AdamUpdate.Param> ref = new java.util.ArrayList<>(), dev = new java.util.ArrayList<>();
        for (int rep = 0; rep < 7; rep++)  // 21 parameters: two launches of up to 16
          for (Shape s : shapes) {
            Tensor p = random(rnd, s, dtype, -1, 1), g = random(rnd, s, dtype, -1, 1);
            Tensor m = random(rnd, s, DType.F32, -0.1, 0.1), v = random(rnd, s, DType.F32, 0, 0.01);
            ref.add(new AdamUpdate.Param(p, g, m, v));
            dev.add(new AdamUpdate.Param(toGpu(p), toGpu(g), toGpu(m), toGpu(v)));
          }
        CPU.kernels().adamStep(ref, u);
        gpu().kernels().adamStep(dev, u);
        // f32 arithmetic against the reference's double: a few f32 ulps on m, v and the update, then one rounding to the dtype
        double tol = dtype == DType.BF16 ? 8e-3 : 1e-5;
        for (int i = 0; i < ref.size(); i++) {
          CudaTestSupport.assertClose("adam p " + i, ref.get(i).param(), dev.get(i).param(), tol, 1e-6);
          CudaTestSupport.assertClose("adam m " + i, ref.get(i).expAvg(), dev.get(i).expAvg(), 1e-5, 1e-7);
          CudaTestSupport.assertClose("adam v " + i, ref.get(i).expAvgSq(), dev.get(i).expAvgSq(), 1e-5, 1e-9);
        }
      }
  }

  @Test void anIndexOutOfRangeIsReportedNotWritten() {
    Tensor x = toGpu(random(rnd, Shape.of(4, 3), DType.F32, -1, 1));
    Tensor idx = toGpu(Tensor.of(new long[] {1, 9, 0}, Shape.of(3), DType.I64, CPU));
    Tensor out = Tensor.empty(Shape.of(3, 3), DType.F32, gpu());
    gpu().kernels().indexSelect(x, 0, idx, out);
    TensorException e = assertThrows(TensorException.class, () -> gpu().synchronize());
    assertTrue(e.getMessage().contains("indexSelect") && e.getMessage().contains("index 9") && e.getMessage().contains("0..3"), e.getMessage());
    gpu().synchronize(); // reported once, then cleared
  }
}
