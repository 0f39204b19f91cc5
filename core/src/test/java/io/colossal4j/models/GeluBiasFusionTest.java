package io.colossal4j.models;

import static io.colossal4j.testing.GradCheck.assertClose;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.colossal4j.autograd.Autograd;
import io.colossal4j.backend.Backend;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.nn.ModuleContext;
import io.colossal4j.nn.UnitModel;
import io.colossal4j.ops.Arith;
import io.colossal4j.ops.Reduce;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.testing.FusedGeluBackend;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * The ViT and GPT MLPs run fc1 and their GELU as LinAlg.linearGelu: on a backend whose kernels fuse the GELU backward
 * with the bias gradient (the scalar reference with its fused call on) every block's backward makes one fused call,
 * and the model's output (bit for bit: the forward runs the same kernels) and parameter gradients equal the
 * composite model's on the plain reference (same seed, same parameters).
 */
class GeluBiasFusionTest {
  static final Backend REF = CpuBackend.reference();

  @Test void vitMlpsFuseTheGeluBackwardWithFc1sBiasGradient() {
    AtomicInteger calls = new AtomicInteger();
    Backend fusing = FusedGeluBackend.create(calls);
    ModelSpec spec = ModelSpec.of("vit_mini_28", 10);
    UnitModel composite = Zoo.build(ModuleContext.of(REF, 3), spec), fused = Zoo.build(ModuleContext.of(fusing, 3), spec);
    composite.eval();
    fused.eval();
    compare(composite, images(REF), fused, images(fusing));
    assertEquals(4, calls.get(), "fused calls in one backward (4 blocks)");
  }

  @Test void gptMlpsFuseTheGeluBackwardWithCFcsBiasGradient() {
    AtomicInteger calls = new AtomicInteger();
    Backend fusing = FusedGeluBackend.create(calls);
    ModelSpec spec = ModelSpec.of("gpt_small", 0);
    UnitModel composite = Zoo.build(ModuleContext.of(REF, 5), spec), fused = Zoo.build(ModuleContext.of(fusing, 5), spec);
    compare(composite, tokens(REF), fused, tokens(fusing));
    assertEquals(4, calls.get(), "fused calls in one backward (4 blocks)");
  }

  /**
   * Outputs (bit for bit) and every parameter's gradient of L = Σ y·r. Gradients: the same kernels on the same values
   * except fc1's bias sum, a double sum rounded once over another view of the same rows: within 1e-6 of each
   * tensor's largest element (f32 rounding, were the order to matter).
   */
  private static void compare(UnitModel composite, Tensor xc, UnitModel fused, Tensor xf) {
    Tensor yc = composite.forward(xc), yf = fused.forward(xf);
    assertArrayEquals(yc.toDoubleArray(), yf.toDoubleArray(), 0.0, "output");
    double[] r = new Random(9).doubles(yc.numel(), -1, 1).toArray();
    Autograd.backward(Reduce.sum(Arith.mul(yc, Tensor.of(r, yc.shape(), yc.dtype(), REF))));
    Autograd.backward(Reduce.sum(Arith.mul(yf, Tensor.of(r, yf.shape(), yf.dtype(), xf.backend()))));
    Map<String, Tensor> pf = fused.namedParameters();
    composite.namedParameters().forEach((name, p) -> {
      double[] a = p.grad().toDoubleArray(), b = pf.get(name).grad().toDoubleArray();
      double scale = 1e-30;
      for (double v : a) scale = Math.max(scale, Math.abs(v));
      assertClose(a, b, 1e-6 * scale, 0, "grad " + name);
    });
  }

  private static Tensor images(Backend be) {
    return Tensor.of(new Random(5).doubles(2 * 28 * 28, -1, 1).toArray(), Shape.of(2, 1, 28, 28), DType.F32, be);
  }

  private static Tensor tokens(Backend be) {
    return Tensor.of(new Random(1).longs(2 * 16, 0, 256).toArray(), Shape.of(2, 16), DType.I64, be);
  }
}
