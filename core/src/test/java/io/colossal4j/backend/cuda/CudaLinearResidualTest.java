package io.colossal4j.backend.cuda;

import static io.colossal4j.backend.cuda.CudaTestSupport.CPU;
import static io.colossal4j.backend.cuda.CudaTestSupport.assertClose;
import static io.colossal4j.backend.cuda.CudaTestSupport.gpu;
import static io.colossal4j.backend.cuda.CudaTestSupport.like;
import static io.colossal4j.backend.cuda.CudaTestSupport.nearScaled;
import static io.colossal4j.backend.cuda.CudaTestSupport.outputs;
import static io.colossal4j.backend.cuda.CudaTestSupport.random;
import static io.colossal4j.backend.cuda.CudaTestSupport.toGpu;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.colossal4j.autograd.Autograd;
import io.colossal4j.autograd.GradMode;
import io.colossal4j.ops.Arith;
import io.colossal4j.ops.LinAlg;
import io.colossal4j.ops.Views;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * LinAlg.linearAdd on CUDA: residual + x·wᵀ + b as one cuBLASLt GEMM (beta = 1, C = the residual, the bias in the
 * epilogue), against the composite Arith.add(residual, linear(x, w, b)) on the same GPU, forward and gradients, in
 * f32 and bf16, at ViT-H's projection shapes (attn.proj 1280 → 1280, mlp.fc2 5120 → 1280, 2 × 289 tokens) and
 * bias-less; the kernel against the scalar reference (which rounds once); the fused path proven taken (a counter
 * and the profile's kernel label); and the cases that must fall back to the composite.
 */
class CudaLinearResidualTest {
  private final Random rnd = new Random(23);

  private CudaKernels kernels() { return (CudaKernels) gpu().kernels(); }

  @Test void fusedProjectionMatchesTheCompositeForwardAndBackward() {
    for (DType t : new DType[] {DType.F32, DType.BF16}) {
      check(t, Shape.of(2, 289, 1280), 1280, true);    // ViT-H attn.proj
      check(t, Shape.of(2, 289, 5120), 1280, true);    // ViT-H mlp.fc2
      check(t, Shape.of(1, 300, 1024), 1024, false);   // bias-less (GPT with bias = false)
    }
  }

  private void check(DType t, Shape xShape, int out, boolean bias) {
    int in = xShape.dim(xShape.rank() - 1);
    Shape oShape = xShape.with(xShape.rank() - 1, out);
    String what = t + " x " + xShape + " -> " + out + (bias ? "" : " no bias");
    // x, r in [-1, 1), w scaled by 1/sqrt(in) (as initialisation does): outputs of order 1
    double ws = 1 / Math.sqrt(in);
    Tensor xc = random(rnd, xShape, t, -1, 1), wc = random(rnd, Shape.of(out, in), t, -ws, ws), rc = random(rnd, oShape, t, -1, 1);
    Tensor bc = bias ? random(rnd, Shape.of(out), t, -1, 1) : null, gc = random(rnd, oShape, t, -1, 1);
    long before = kernels().residualGemms();
    Tensor[] fused = run(xc, wc, bc, rc, gc, false), composite = run(xc, wc, bc, rc, gc, true);
    assertEquals(before + 1, kernels().residualGemms(), what + ": one fused GEMM");
    Tensor lin = GradMode.noGrad(() -> LinAlg.linear(toGpu(xc), toGpu(wc), bc == null ? null : toGpu(bc)));
    checkOutput(what, t, fused[0], composite[0], lin);
    // the residual's gradient is the output gradient itself
    assertArrayEquals(composite[4].toDoubleArray(), fused[4].toDoubleArray(), 0.0, what + ": residual gradient");
    assertArrayEquals(gc.toDoubleArray(), fused[4].toDoubleArray(), 0.0, what + ": residual gradient = g");
    // x, w, b: linear's backward rule on the same g and saved x, w, so the same GEMMs and sums on the same values;
    // expected bit-identical, compared within 1e-6 (f32) / 2^-8 (bf16) of each tensor's largest element so that a
    // differently ordered but correct reduction still passes while any wrong rule (errors of order 1) fails
    double rel = t == DType.F32 ? 1e-6 : 1.0 / 256;
    String[] names = {"output", "grad x", "grad w", "grad b"};
    for (int i = 1; i < 4; i++) if (composite[i] != null) nearScaled(what + ": " + names[i], composite[i], fused[i], rel);
  }

  /**
   * Fused rd(s + r) against composite rd(rd(s) + r) (s: the f32-accumulated product plus bias, r the residual,
   * rd the rounding to t, unit roundoff u: 2^-24 for f32, 2^-8 for bf16). They differ by at most
   * u·|s + r| + u·|s| + u·|rd(s) + r| ≈ u·(2·|out| + |s|), plus the difference of two f32 accumulations of
   * K products in another order (algorithms may differ): about √K·2^-24·Σ|x·w| ≈ 2e-5 here, bounded by 1e-4.
   */
  private static void checkOutput(String what, DType t, Tensor fused, Tensor composite, Tensor lin) {
    double u = t == DType.F32 ? 0x1p-24 : 0x1p-8;
    double[] f = fused.toDoubleArray(), c = composite.toDoubleArray(), s = lin.toDoubleArray();
    for (int i = 0; i < f.length; i++) {
      double bound = 1.02 * u * (2 * Math.abs(c[i]) + Math.abs(s[i])) + 1e-4;
      if (!(Math.abs(f[i] - c[i]) <= bound))
        fail(what + ": output element " + i + " fused " + f[i] + " composite " + c[i] + " (bound " + bound + ")");
    }
  }

  /** {y, gx, gw, gb, gr} of linearAdd (or the composite) on fresh GPU leaves, backward from g. */
  private static Tensor[] run(Tensor xc, Tensor wc, Tensor bc, Tensor rc, Tensor gc, boolean composite) {
    Tensor x = toGpu(xc).requiresGrad(true), w = toGpu(wc).requiresGrad(true), r = toGpu(rc).requiresGrad(true);
    Tensor b = bc == null ? null : toGpu(bc).requiresGrad(true);
    Tensor y = composite ? Arith.add(r, LinAlg.linear(x, w, b)) : LinAlg.linearAdd(x, w, b, r);
    assertEquals(rc.dtype(), y.dtype());
    Autograd.backward(y, toGpu(gc), false);
    return new Tensor[] {y, x.grad(), w.grad(), b == null ? null : b.grad(), r.grad()};
  }

  /**
   * The kernel against the scalar reference's matmulResidual (every element summed in double and rounded once):
   * f32 exact products summed in another order (1e-5 relative, 1e-4 absolute on values of order sqrt(K)); bf16
   * one rounding to 8 significant bits (2^-8 relative) of values up to about sqrt(K) + 2, as CudaMatmulBiasTest.
   */
  @Test void kernelMatchesTheReference() {
    for (DType t : new DType[] {DType.F32, DType.BF16})
      for (boolean bias : new boolean[] {true, false}) {
        int m = 77, n = 130, kk = 64;
        Tensor x = random(rnd, Shape.of(m, kk), t, -1, 1), w = random(rnd, Shape.of(n, kk), t, -1, 1), r = random(rnd, Shape.of(m, n), t, -1, 1);
        Tensor b = bias ? random(rnd, Shape.of(n), t, -1, 1) : null;
        Tensor wt = w.view(Shape.of(kk, n), new long[] {1, kk}, 0);
        Tensor[] out = outputs(Shape.of(m, n), t);
        CPU.kernels().matmulResidual(x, wt, b, r, out[0]);
        assertTrue(kernels().matmulResidual(toGpu(x), like(toGpu(w), wt), bias ? toGpu(b) : null, toGpu(r), out[1]), t + ": fused kernel declined");
        double rtol = t == DType.F32 ? 1e-5 : 1e-2, atol = t == DType.F32 ? 1e-4 : 0.05;
        assertClose(t + (bias ? "" : " no bias") + " kernel vs reference", out[0], out[1], rtol, atol);
      }
  }

  @Test void profileNamesTheFusedGemm() {
    CudaBackend be = gpu();
    Tensor x = toGpu(random(rnd, Shape.of(2, 289, 1280), DType.BF16, -1, 1)), w = toGpu(random(rnd, Shape.of(1280, 1280), DType.BF16, -0.03, 0.03));
    Tensor b = toGpu(random(rnd, Shape.of(1280), DType.BF16, -1, 1)), r = toGpu(random(rnd, Shape.of(2, 289, 1280), DType.BF16, -1, 1));
    be.startProfile();
    LinAlg.linearAdd(x, w, b, r);
    String profile = be.stopProfile(20);
    // cuBLASLt's column-major view: m = 1280 out features, n = 578 token rows, k = 1280; "+res" the residual as C
    assertTrue(profile.contains("gemm bf16 TN 1280x578x1280 +res +bias"), profile);
  }

  @Test void otherDtypesAndLayoutsFallBackToTheComposite() {
    long before = kernels().residualGemms();
    // an f32 residual stream with a bf16 projection: linear in bf16, then an f32 add (as under autocast)
    Tensor x = toGpu(random(rnd, Shape.of(64, 96), DType.BF16, -1, 1)), w = toGpu(random(rnd, Shape.of(32, 96), DType.BF16, -0.1, 0.1));
    Tensor r = toGpu(random(rnd, Shape.of(64, 32), DType.F32, -1, 1));
    Tensor y = LinAlg.linearAdd(x, w, null, r);
    assertEquals(DType.F32, y.dtype());
    assertArrayEquals(Arith.add(r, LinAlg.linear(x, w, null)).toDoubleArray(), y.toDoubleArray(), 0.0, "f32 residual");
    // a residual whose rows do not fold into one stride (a permuted view)
    Tensor rp = Views.permute(toGpu(random(rnd, Shape.of(8, 4, 32), DType.F32, -1, 1)), 1, 0, 2);
    Tensor x3 = toGpu(random(rnd, Shape.of(4, 8, 96), DType.F32, -1, 1)), w3 = toGpu(random(rnd, Shape.of(32, 96), DType.F32, -0.1, 0.1));
    assertArrayEquals(Arith.add(rp, LinAlg.linear(x3, w3, null)).toDoubleArray(), LinAlg.linearAdd(x3, w3, null, rp).toDoubleArray(), 0.0, "permuted residual");
    assertEquals(before, kernels().residualGemms(), "no fused GEMM for these");
  }
}
