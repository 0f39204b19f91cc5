package io.colossal4j.backend.cuda;

import static io.colossal4j.backend.cuda.CudaTestSupport.gpu;
import static io.colossal4j.backend.cuda.CudaTestSupport.nearScaled;
import static io.colossal4j.backend.cuda.CudaTestSupport.random;
import static io.colossal4j.backend.cuda.CudaTestSupport.toGpu;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.colossal4j.autograd.Autograd;
import io.colossal4j.autograd.GradMode;
import io.colossal4j.backend.BinaryOp;
import io.colossal4j.models.ModelSpec;
import io.colossal4j.models.Zoo;
import io.colossal4j.models.vit.Mlp;
import io.colossal4j.nn.Activation;
import io.colossal4j.nn.ModuleContext;
import io.colossal4j.nn.UnitModel;
import io.colossal4j.ops.Arith;
import io.colossal4j.ops.LinAlg;
import io.colossal4j.ops.Reduce;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * LinAlg.linearGelu on CUDA: fc1's GEMM (bias in the epilogue) and GELU forward, and backward the GELU backward fused
 * with fc1's bias gradient (gelu_bwd_colsum_*, one pass over pre-activation, gradient and dgelu), against the
 * composite gelu(linear(x, w, b)) on the same GPU, in f32 and bf16, at ViT-H's fc1 (2 × 577 tokens, 1280 → 5120,
 * exact GELU) and GPT-2 medium's c_fc (1024 tokens, 1024 → 4096, tanh GELU); the bias gradient against an f64 column
 * sum of the composite's dgelu; the fused path proven taken (a counter and the profile's kernel label) by the op and
 * by the ViT MLP and GPT blocks; and the cases that fall back to the composite.
 */
class CudaLinearGeluTest {
  private final Random rnd = new Random(29);

  private CudaKernels kernels() { return (CudaKernels) gpu().kernels(); }

  @Test void fusedFc1MatchesTheCompositeAtViTHAndGptShapes() {
    for (DType t : new DType[] {DType.F32, DType.BF16}) {
      check(t, Shape.of(2, 577, 1280), 5120, LinAlg.Gelu.EXACT);   // ViT-H mlp.fc1
      check(t, Shape.of(1, 1024, 1024), 4096, LinAlg.Gelu.TANH);   // GPT-2 medium mlp.c_fc
    }
  }

  private void check(DType t, Shape xShape, int out, LinAlg.Gelu gelu) {
    int in = xShape.dim(xShape.rank() - 1);
    Shape oShape = xShape.with(xShape.rank() - 1, out);
    String what = t + " " + gelu + " x " + xShape + " -> " + out;
    // x in [-1, 1), w scaled by 1/sqrt(in) (as initialisation does), b in [-1, 1): pre-activations of order 1
    double ws = 1 / Math.sqrt(in);
    Tensor xc = random(rnd, xShape, t, -1, 1), wc = random(rnd, Shape.of(out, in), t, -ws, ws), bc = random(rnd, Shape.of(out), t, -1, 1);
    Tensor gc = random(rnd, oShape, t, -1, 1);
    long before = kernels().geluBiasGrads();
    Tensor[] fused = run(xc, wc, bc, gc, gelu, false);
    assertEquals(before + 1, kernels().geluBiasGrads(), what + ": one fused GELU backward + bias gradient");
    Tensor[] composite = run(xc, wc, bc, gc, gelu, true);
    assertEquals(before + 1, kernels().geluBiasGrads(), what + ": the composite does not fuse");
    // output, x's and w's gradients: the same GEMM, GELU and GELU backward math (binary_op) on the same values, then
    // the same GEMMs; expected bit-identical, compared within 1e-6 (f32) / 2^-8 (bf16) of each tensor's largest element;
    // except a bf16 tanh GELU, which the GEMM's epilogue applies to the unrounded sum (the composite to the rounded
    // pre-activation): outputs an ulp apart, 2^-7 of the largest element (one ulp at the top binade)
    double rel = t == DType.F32 ? 1e-6 : gelu == LinAlg.Gelu.TANH ? 1.0 / 128 : 1.0 / 256;
    String[] names = {"output", "grad x", "grad w"};
    for (int i = 0; i < 3; i++) nearScaled(what + ": " + names[i], composite[i], fused[i], rel);
    checkBiasGrad(what, t, fused[3], composite[3], xc, wc, bc, gc, gelu);
  }

  /**
   * b's gradient (fused, and the composite's) against the f64 column sums s of the composite's dgelu h as stored:
   * f32 accumulation of R rows in any order is within R·2^-24·Σ|h| of s (the standard bound), and the stored gradient
   * adds one rounding to t (2^-8 relative for bf16, 2^-24 for f32): |gb - s| <= u_t·|s| + R·2^-24·Σ|h| (+1e-6).
   */
  private static void checkBiasGrad(String what, DType t, Tensor fusedGb, Tensor compositeGb, Tensor xc, Tensor wc, Tensor bc, Tensor gc, LinAlg.Gelu gelu) {
    BinaryOp back = gelu == LinAlg.Gelu.EXACT ? BinaryOp.GELU_BACKWARD : BinaryOp.GELU_TANH_BACKWARD;
    double[] h = GradMode.noGrad(() -> {
      Tensor pre = LinAlg.linear(toGpu(xc), toGpu(wc), toGpu(bc)), g = toGpu(gc), dh = Tensor.empty(pre.shape(), t, gpu());
      gpu().kernels().binary(back, pre, g, dh);
      return dh.toDoubleArray();
    });
    int n = (int) fusedGb.numel(), rows = h.length / n;
    double[] sum = new double[n], abs = new double[n];
    for (int r = 0; r < rows; r++)
      for (int c = 0; c < n; c++) {
        sum[c] += h[r * n + c];
        abs[c] += Math.abs(h[r * n + c]);
      }
    double u = t == DType.F32 ? 0x1p-24 : 0x1p-8;
    double[] f = fusedGb.toDoubleArray(), cmp = compositeGb.toDoubleArray();
    for (int c = 0; c < n; c++) {
      double bound = u * Math.abs(sum[c]) + rows * 0x1p-24 * abs[c] + 1e-6;
      if (!(Math.abs(f[c] - sum[c]) <= bound)) fail(what + ": fused bias gradient " + c + " = " + f[c] + ", f64 sum " + sum[c] + " (bound " + bound + ")");
      if (!(Math.abs(cmp[c] - sum[c]) <= bound)) fail(what + ": composite bias gradient " + c + " = " + cmp[c] + ", f64 sum " + sum[c] + " (bound " + bound + ")");
    }
  }

  /** {y, gx, gw, gb} of linearGelu (or the composite) on fresh GPU leaves, backward from g. */
  private static Tensor[] run(Tensor xc, Tensor wc, Tensor bc, Tensor gc, LinAlg.Gelu gelu, boolean composite) {
    Tensor x = toGpu(xc).requiresGrad(true), w = toGpu(wc).requiresGrad(true), b = toGpu(bc).requiresGrad(true);
    Tensor y = composite ? gelu.apply(LinAlg.linear(x, w, b)) : LinAlg.linearGelu(x, w, b, gelu);
    assertEquals(xc.dtype(), y.dtype());
    Autograd.backward(y, toGpu(gc), false);
    return new Tensor[] {y, x.grad(), w.grad(), b.grad()};
  }

  /**
   * cuBLASLt's GELU epilogue computes the tanh form: on f32 outputs (allowed here by a test switch), where the tanh
   * and erf forms differ by up to 2e-4 at |x| ≈ 2, the epilogue's output is closer to tanh-GELU of its own stored
   * pre-activation than to erf-GELU, and within 1e-4 of it (whatever approximations its f32 arithmetic uses). On
   * bf16 (the path the op takes) the output is within one bf16 rounding of tanh-GELU(pre) in double, plus the effect
   * of pre's own rounding (the epilogue applies GELU to the unrounded sum: |GELU'| <= 1.13 times half an ulp of pre,
   * at most 2^-8·|pre|).
   */
  @Test void geluEpilogueComputesTheTanhForm() {
    CudaMatmul g = kernels().gemms();
    g.geluEpilogueAnyDtype = true;
    try {
      for (DType t : new DType[] {DType.F32, DType.BF16}) {
        Tensor a = toGpu(random(rnd, Shape.of(256, 32), t, -1, 1)), b = toGpu(random(rnd, Shape.of(32, 512), t, -1, 1));
        Tensor bias = toGpu(random(rnd, Shape.of(512), t, -1, 1));
        Tensor pre = Tensor.empty(Shape.of(256, 512), t, gpu()), out = Tensor.empty(Shape.of(256, 512), t, gpu());
        long before = g.geluGemms();
        assertTrue(g.matmulBiasGelu(io.colossal4j.backend.UnaryOp.GELU_TANH, a, b, bias, pre, out), t + ": the epilogue GEMM ran");
        assertEquals(before + 1, g.geluGemms());
        double[] p = pre.toDoubleArray(), y = out.toDoubleArray();
        double tanhErr = 0, erfErr = 0;
        for (int i = 0; i < p.length; i++) {
          double tanhForm = 0.5 * p[i] * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (p[i] + 0.044715 * p[i] * p[i] * p[i])));
          double erfForm = io.colossal4j.backend.cpu.MathFns.gelu(p[i]);
          tanhErr = Math.max(tanhErr, Math.abs(y[i] - tanhForm));
          erfErr = Math.max(erfErr, Math.abs(y[i] - erfForm));
          if (t == DType.BF16) {
            double bound = 0x1p-8 * Math.abs(tanhForm) + 1.13 * 0x1p-8 * Math.abs(p[i]) + 1e-6;
            if (!(Math.abs(y[i] - tanhForm) <= bound)) fail("bf16 element " + i + ": pre " + p[i] + ", out " + y[i] + ", tanh-GELU " + tanhForm);
          }
        }
        System.out.printf("GELU epilogue, %s outputs: max |out - tanh form| %.3g, max |out - erf form| %.3g%n", t, tanhErr, erfErr);
        if (t == DType.F32) {
          assertTrue(tanhErr < erfErr && tanhErr <= 1e-4, "f32: the epilogue is the tanh form: off by " + tanhErr + " from it, " + erfErr + " from the erf form");
          // pre itself: a·b + bias, against f64 sums
          double[] av = a.toDoubleArray(), bv = b.toDoubleArray(), cv = bias.toDoubleArray();
          for (int r = 0; r < 256; r += 17)
            for (int c = 0; c < 512; c += 13) {
              double s = cv[c];
              for (int q = 0; q < 32; q++) s += av[r * 32 + q] * bv[q * 512 + c];
              assertEquals(s, p[r * 512 + c], 1e-5, "pre at " + r + "," + c);
            }
        }
      }
    } finally {
      g.geluEpilogueAnyDtype = false;
    }
  }

  @Test void only16BitTanhGeluTakesTheEpilogue() {
    long before = kernels().gemms().geluGemms();
    for (DType t : new DType[] {DType.F32, DType.BF16})
      for (LinAlg.Gelu gelu : LinAlg.Gelu.values()) {
        Tensor x = toGpu(random(rnd, Shape.of(128, 64), t, -1, 1)), w = toGpu(random(rnd, Shape.of(256, 64), t, -0.1, 0.1));
        Tensor b = toGpu(random(rnd, Shape.of(256), t, -1, 1));
        GradMode.noGrad(() -> LinAlg.linearGelu(x, w, b, gelu));
      }
    assertEquals(before + 1, kernels().gemms().geluGemms(), "bf16 with the tanh GELU only");
  }

  @Test void vitMlpAndModelTakeTheFusedPath() {
    CudaBackend be = gpu();
    Mlp mlp = new Mlp(new ModuleContext(be, DType.BF16, 1), 64, 256, Activation.gelu(), 0.0);
    Tensor x = toGpu(random(rnd, Shape.of(2, 50, 64), DType.BF16, -1, 1)).requiresGrad(true);
    long before = kernels().geluBiasGrads();
    be.startProfile();
    Tensor y = mlp.forward(x);
    Autograd.backward(Reduce.sum(Arith.mul(y, y)));
    String profile = be.stopProfile(40);
    assertEquals(before + 1, kernels().geluBiasGrads(), "ViT Mlp: one fused pass");
    assertTrue(profile.contains("gelu_bwd_colsum_bbb"), profile);
    // vit_mini_28: 4 blocks, fc1 64 -> 128 over 16 images × 17 tokens
    UnitModel vit = Zoo.build(ModuleContext.of(be, 0), ModelSpec.of("vit_mini_28", 10));
    Tensor images = toGpu(random(rnd, Shape.of(16, 1, 28, 28), DType.F32, -1, 1));
    Tensor logits = vit.forward(images);
    Autograd.backward(Reduce.sum(Arith.mul(logits, logits)));
    assertEquals(before + 1 + 4, kernels().geluBiasGrads(), "vit_mini_28: one fused pass per block");
  }

  @Test void gptBlocksTakeTheFusedPath() {
    CudaBackend be = gpu();
    // gpt_small: 4 blocks, c_fc 128 -> 512 (tanh GELU) over 2 × 64 tokens
    UnitModel gpt = Zoo.build(ModuleContext.of(be, 5), ModelSpec.of("gpt_small", 0));
    Tensor ids = Tensor.of(new Random(1).longs(2 * 64, 0, 256).toArray(), Shape.of(2, 64), DType.I64, be);
    long before = kernels().geluBiasGrads();
    Tensor logits = gpt.forward(ids);
    Autograd.backward(Reduce.sum(Arith.mul(logits, logits)));
    assertEquals(before + 4, kernels().geluBiasGrads(), "GPT: one fused pass per block");
  }

  @Test void smallOrUnevenProblemsFallBackToTheComposite() {
    long before = kernels().geluBiasGrads();
    // fewer than 64 rows, and a hidden size not a multiple of 8: the composite kernels, the same numbers
    for (Shape[] s : new Shape[][] {{Shape.of(40, 32), Shape.of(64, 32)}, {Shape.of(100, 32), Shape.of(60, 32)}}) {
      Tensor xc = random(rnd, s[0], DType.F32, -1, 1), wc = random(rnd, s[1], DType.F32, -0.2, 0.2), bc = random(rnd, Shape.of(s[1].dim(0)), DType.F32, -1, 1);
      Tensor gc = random(rnd, Shape.of(s[0].dim(0), s[1].dim(0)), DType.F32, -1, 1);
      Tensor[] fused = run(xc, wc, bc, gc, LinAlg.Gelu.EXACT, false), composite = run(xc, wc, bc, gc, LinAlg.Gelu.EXACT, true);
      for (int i = 0; i < 4; i++) assertArrayEquals(composite[i].toDoubleArray(), fused[i].toDoubleArray(), 0.0, "tensor " + i + " for " + s[0] + " x " + s[1]);
    }
    assertEquals(before, kernels().geluBiasGrads(), "no fused pass for these");
  }
}
