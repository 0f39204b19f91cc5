package io.colossal4j.backend.cpu.simd;

import static io.colossal4j.testing.GradCheck.assertClose;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.backend.Conv2dSpec;
import io.colossal4j.backend.Kernels;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/**
 * The one-channel stem convolution ({@link StemConv}) against the scalar reference kernels (double sums): the forward
 * and the weight gradient of the ViT stem's first layer (3×3, stride 2, padding 1, 16 channels), and kernels, strides
 * and paddings around it (5×5 stride 1 unpadded, 3×2 with strides 2×3 and asymmetric padding, output channels not a
 * multiple of four, a batch that leaves a short chunk of images).
 *
 * <p>Tolerances: inputs in [-1, 1). The forward sums T ≤ 25 products per element: f32 error ≤ 25·2^-24·25 ≈ 4e-5
 * in the worst case, 1e-5 absolute plus 1e-5 relative for sums that are ~√25 in size. The weight gradient sums
 * n·P ≤ 2200 products (each ≤ 1) per element: ≤ 2200·2^-24·Σ|terms| ≤ 2200·2^-24·2200 ≈ 2.9e-4 in the worst case, so 3e-4 absolute.
 * A dropped tap or image changes an element by about 0.3 (forward) or 10 (weight gradient), far outside.
 */
class StemConvTest {
  static final CpuBackend FAST = CpuBackend.create(2);
  static final Kernels REF = CpuBackend.reference().kernels();

  @AfterAll static void close() { FAST.close(); }

  @Test void vitStemFirstLayer() { check(11, 16, 28, 28, 3, 3, Conv2dSpec.of(2, 1, 1, 1), 1); }

  @Test void otherKernelsStridesAndPaddings() {
    check(3, 6, 20, 17, 5, 5, Conv2dSpec.of(1, 0, 1, 1), 2);
    check(9, 5, 15, 16, 3, 2, new Conv2dSpec(2, 3, 1, 0, 2, 1, 1, 1, 1), 3);
    check(2, 1, 9, 9, 1, 1, Conv2dSpec.of(1, 0, 1, 1), 4);
  }

  @Test void takesOnlyOneChannelSmallKernelsWithoutDilation() {
    assertTrue(StemConv.applies(1, 3, 3, 14, 14, Conv2dSpec.of(2, 1, 1, 1)));
    assertFalse(StemConv.applies(2, 3, 3, 14, 14, Conv2dSpec.of(2, 1, 1, 1)));
    assertFalse(StemConv.applies(1, 3, 3, 14, 14, Conv2dSpec.of(2, 1, 2, 1)));
    assertFalse(StemConv.applies(1, 8, 8, 14, 14, Conv2dSpec.of(1, 0, 1, 1)));
  }

  private static void check(int n, int cout, int h, int w, int kh, int kw, Conv2dSpec spec, long seed) {
    Random rnd = new Random(seed);
    int ho = spec.outH(h, kh), wo = spec.outW(w, kw);
    assertTrue(StemConv.applies(1, kh, kw, ho, wo, spec), "the case must take the stem kernel");
    Tensor x = rand(rnd, Shape.of(n, 1, h, w)), wt = rand(rnd, Shape.of(cout, 1, kh, kw)), gy = rand(rnd, Shape.of(n, cout, ho, wo));
    Tensor yFast = Tensor.zeros(Shape.of(n, cout, ho, wo), DType.F32, FAST), yRef = Tensor.zeros(Shape.of(n, cout, ho, wo), DType.F32, FAST);
    FAST.kernels().conv2d(x, wt, spec, yFast);
    REF.conv2d(x, wt, spec, yRef);
    String what = n + "×1×" + h + "×" + w + " * " + cout + "×" + kh + "×" + kw + " " + spec;
    assertClose(yRef.toDoubleArray(), yFast.toDoubleArray(), 1e-5, 1e-5, "forward " + what);
    Tensor gFast = Tensor.zeros(wt.shape(), DType.F32, FAST), gRef = Tensor.zeros(wt.shape(), DType.F32, FAST);
    FAST.kernels().conv2dBackwardWeight(x, gy, spec, gFast);
    REF.conv2dBackwardWeight(x, gy, spec, gRef);
    assertClose(gRef.toDoubleArray(), gFast.toDoubleArray(), 3e-4, 0, "weight gradient " + what);
  }

  private static Tensor rand(Random rnd, Shape s) {
    float[] v = new float[Math.toIntExact(s.numel())];
    for (int i = 0; i < v.length; i++) v[i] = (float) (2 * rnd.nextDouble() - 1);
    return Tensor.of(v, s, FAST);
  }
}
