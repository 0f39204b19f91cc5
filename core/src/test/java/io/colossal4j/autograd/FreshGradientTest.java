package io.colossal4j.autograd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.backend.Backend;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.ops.Arith;
import io.colossal4j.ops.LinAlg;
import io.colossal4j.ops.Reduce;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.MemoryCategory;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * A linear layer's weight and bias gradients are written straight into the leaves' gradients when they have none
 * (marked fresh, installed without a copy), and otherwise added to / copied over the existing gradient and then
 * released. Every case is compared with the same sums written out by hand (x, g, w small integers in f64, so every
 * value is exact and the comparison is exact).
 */
class FreshGradientTest {
  private static final Backend CPU = CpuBackend.reference();
  private final Random rnd = new Random(3);

  private Tensor ints(int... shape) {
    Shape s = Shape.of(shape);
    double[] v = new double[(int) s.numel()];
    for (int i = 0; i < v.length; i++) v[i] = rnd.nextInt(7) - 3;
    return Tensor.of(v, s, DType.F64, CPU);
  }

  /** d/dw and d/db of sum(weights ∘ (x wᵀ + b)) by hand: gw = weightsᵀ x, gb = column sums of weights. */
  private static double[][] expected(Tensor x, Tensor weights) {
    double[] xs = x.toDoubleArray(), gs = weights.toDoubleArray();
    int rows = x.size(0), in = x.size(1), out = weights.size(1);
    double[] gw = new double[out * in], gb = new double[out];
    for (int r = 0; r < rows; r++)
      for (int o = 0; o < out; o++) {
        gb[o] += gs[r * out + o];
        for (int i = 0; i < in; i++) gw[o * in + i] += gs[r * out + o] * xs[r * in + i];
      }
    return new double[][] {gw, gb};
  }

  private static void backwardThrough(Tensor y, Tensor weights) { Autograd.backward(Reduce.sum(Arith.mul(y, weights))); }

  @Test void aLeafWithoutGradientReceivesTheOpsBufferWithoutACopy() {
    Tensor x = ints(5, 3), w = ints(4, 3).requiresGrad(true), b = ints(4).requiresGrad(true), weights = ints(5, 4);
    backwardThrough(LinAlg.linear(x, w, b), weights);
    double[][] e = expected(x, weights);
    assertArrayEquals(e[0], w.grad().toDoubleArray());
    assertArrayEquals(e[1], b.grad().toDoubleArray());
    assertEquals(MemoryCategory.GRADIENT, w.grad().storage().category());
    assertFalse(w.grad().takeFreshGradient(), "the fresh mark is consumed when the gradient is installed");
    // released gradients are owned: releaseGrad gives the installed buffer back
    Tensor installed = w.grad();
    w.releaseGrad();
    assertTrue(installed.storage().isReleased());
  }

  @Test void anExistingGradientIsAddedToAndTheFreshBufferReleased() {
    Tensor x = ints(6, 2), w = ints(3, 2).requiresGrad(true), weights = ints(6, 3);
    Tensor old = ints(3, 2);
    w.setOwnedGrad(old);
    double[] before = old.toDoubleArray();
    backwardThrough(LinAlg.linear(x, w, null), weights);
    double[] want = expected(x, weights)[0];
    for (int i = 0; i < want.length; i++) want[i] += before[i];
    assertArrayEquals(want, w.grad().toDoubleArray());
    assertTrue(w.grad() == old, "the existing buffer keeps the gradient");
  }

  @Test void aLazilyZeroedGradientIsOverwritten() {
    Tensor x = ints(4, 3), w = ints(2, 3).requiresGrad(true), weights = ints(4, 2);
    w.setOwnedGrad(ints(2, 3));
    w.zeroGradLazily();
    backwardThrough(LinAlg.linear(x, w, null), weights);
    assertArrayEquals(expected(x, weights)[0], w.grad().toDoubleArray());
  }

  @Test void aWeightUsedTwiceGetsTheSumOfBothContributions() {
    Tensor x1 = ints(3, 4), x2 = ints(5, 4), w = ints(2, 4).requiresGrad(true), g1 = ints(3, 2), g2 = ints(5, 2);
    Tensor loss = Arith.add(Reduce.sum(Arith.mul(LinAlg.linear(x1, w, null), g1)), Reduce.sum(Arith.mul(LinAlg.linear(x2, w, null), g2)));
    Autograd.backward(loss);
    double[] a = expected(x1, g1)[0], c = expected(x2, g2)[0];
    for (int i = 0; i < a.length; i++) a[i] += c[i];
    assertArrayEquals(a, w.grad().toDoubleArray());
  }

  @Test void layerNormParametersGetTheirGradientsWithoutACopyAndTheSameValues() {
    Tensor x = ints(6, 8), w = ints(8).requiresGrad(true), b = ints(8).requiresGrad(true), weights = ints(6, 8);
    Autograd.backward(Reduce.sum(Arith.mul(io.colossal4j.ops.Norm.layerNorm(x, w, b, 1e-5), weights)));
    double[] freshW = w.grad().toDoubleArray(), freshB = b.grad().toDoubleArray();
    assertEquals(MemoryCategory.GRADIENT, w.grad().storage().category());
    // the same backward into existing (lazily zeroed) gradients: the copy path, bit for bit the same values
    w.zeroGradLazily();
    b.zeroGradLazily();
    Autograd.backward(Reduce.sum(Arith.mul(io.colossal4j.ops.Norm.layerNorm(x, w, b, 1e-5), weights)));
    assertArrayEquals(freshW, w.grad().toDoubleArray());
    assertArrayEquals(freshB, b.grad().toDoubleArray());
  }
}
