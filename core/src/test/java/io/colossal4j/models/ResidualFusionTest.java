package io.colossal4j.models;

import static io.colossal4j.testing.GradCheck.assertClose;
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
import io.colossal4j.testing.FusedResidualBackend;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * The ViT and GPT blocks add their residuals inside the output projections (Linear.forwardAdd) exactly when
 * what sits between projection and add is the identity. On a backend whose kernels fuse (the scalar reference
 * with its fused kernel on) every block fuses both projections in eval mode and only those without drop path
 * in training; and the fused model's forward and parameter gradients equal the composite model's on the plain
 * reference (same seed, same parameters) up to f32 rounding.
 */
class ResidualFusionTest {
  static final Backend REF = CpuBackend.reference();

  @Test void vitBlocksFuseBothProjectionsAndMatchTheComposite() {
    AtomicInteger calls = new AtomicInteger();
    Backend fusing = FusedResidualBackend.create(calls);
    ModelSpec spec = new ModelSpec("vit_mini_28", 10, 0, 0, 0, 0.1);
    UnitModel composite = Zoo.build(ModuleContext.of(REF, 3), spec), fused = Zoo.build(ModuleContext.of(fusing, 3), spec);
    // training with drop path 0.1, rising linearly over the 4 blocks from 0: block 0's rate is 0, so it alone fuses;
    // the other blocks' branches are dropped per sample, so they add afterwards
    fused.train(true);
    fused.forward(images(fusing));
    assertEquals(2, calls.get(), "fused calls with drop path active");
    // eval: drop path is the identity, two fused projections per block (4 blocks)
    composite.eval();
    fused.eval();
    compare(composite, images(REF), fused, images(fusing));
    assertEquals(2 + 2 * 4, calls.get(), "fused calls in one eval forward");
  }

  @Test void gptBlocksFuseBothProjectionsAndMatchTheComposite() {
    AtomicInteger calls = new AtomicInteger();
    Backend fusing = FusedResidualBackend.create(calls);
    ModelSpec spec = ModelSpec.of("gpt_small", 0);
    UnitModel composite = Zoo.build(ModuleContext.of(REF, 5), spec), fused = Zoo.build(ModuleContext.of(fusing, 5), spec);
    // gpt_small has dropout 0: both projections of its 4 blocks fuse in training mode too
    compare(composite, tokens(REF), fused, tokens(fusing));
    assertEquals(2 * 4, calls.get(), "fused calls in one forward");
  }

  /**
   * Outputs and every parameter's gradient of L = Σ y·r. Tolerance: the fused model rounds each projection and
   * its residual once in f32 instead of twice (2^-24 relative each), through 4 blocks and their layer norms:
   * differences stay far below 1e-4 of each tensor's largest element.
   */
  private static void compare(UnitModel composite, Tensor xc, UnitModel fused, Tensor xf) {
    Tensor yc = composite.forward(xc), yf = fused.forward(xf);
    double[] r = new Random(9).doubles(yc.numel(), -1, 1).toArray();
    Autograd.backward(Reduce.sum(Arith.mul(yc, Tensor.of(r, yc.shape(), yc.dtype(), REF))));
    Autograd.backward(Reduce.sum(Arith.mul(yf, Tensor.of(r, yf.shape(), yf.dtype(), xf.backend()))));
    near("output", yc, yf);
    Map<String, Tensor> pf = fused.namedParameters();
    composite.namedParameters().forEach((name, p) -> near("grad " + name, p.grad(), pf.get(name).grad()));
  }

  private static void near(String what, Tensor ref, Tensor got) {
    double[] a = ref.toDoubleArray(), b = got.toDoubleArray();
    double scale = 1e-30;
    for (double v : a) scale = Math.max(scale, Math.abs(v));
    assertClose(a, b, 1e-4 * scale, 0, what);
  }

  private static Tensor images(Backend be) {
    return Tensor.of(new Random(5).doubles(2 * 28 * 28, -1, 1).toArray(), Shape.of(2, 1, 28, 28), DType.F32, be);
  }

  private static Tensor tokens(Backend be) {
    return Tensor.of(new Random(1).longs(2 * 16, 0, 256).toArray(), Shape.of(2, 16), DType.I64, be);
  }
}
