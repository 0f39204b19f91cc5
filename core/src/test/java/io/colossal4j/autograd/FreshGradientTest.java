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
 * (marked fresh, installed without a copy), straight into the existing gradient when it is zeroed lazily (claimed:
 * the op's write is the first contribution), and otherwise added to the existing gradient and then released. Every case is compared with the same sums written out by hand (x, g, w small integers in f64, so every
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

  @Test void aLazilyZeroedGradientIsOverwrittenInPlaceByTheOp() {
    Tensor x = ints(4, 3), w = ints(2, 3).requiresGrad(true), b = ints(2).requiresGrad(true), weights = ints(4, 2);
    Tensor wBuf = ints(2, 3), bBuf = ints(2);
    w.setGrad(wBuf);   // a view of someone else's buffer (data parallelism's bucket), zeroed lazily between steps
    b.setGrad(bBuf);
    w.zeroGradLazily();
    b.zeroGradLazily();
    backwardThrough(LinAlg.linear(x, w, b), weights);
    double[][] e = expected(x, weights);
    assertTrue(w.grad() == wBuf && b.grad() == bBuf, "the buffers stay the gradients");
    assertArrayEquals(e[0], wBuf.toDoubleArray(), "the op's write is the first contribution");
    assertArrayEquals(e[1], bBuf.toDoubleArray());
    assertFalse(wBuf.storage().isReleased(), "a claimed buffer is never released as a temporary");
    // no temporary for either gradient: two storages fewer than the same backward adding into the gradients
    CpuBackend cpu = (CpuBackend) CPU;
    long before = cpu.hostAllocations().requests();
    backwardThrough(LinAlg.linear(x, w, b), weights);   // adds: temporaries for gw and gb
    long adding = cpu.hostAllocations().requests() - before;
    w.zeroGradLazily();
    b.zeroGradLazily();
    before = cpu.hostAllocations().requests();
    backwardThrough(LinAlg.linear(x, w, b), weights);   // overwrites in place
    assertEquals(adding - 2, cpu.hostAllocations().requests() - before, "storages allocated by a backward");
    assertArrayEquals(e[0], wBuf.toDoubleArray());
    // the next pass adds (the buffer is no longer zeroed lazily)
    backwardThrough(LinAlg.linear(x, w, b), weights);
    for (int i = 0; i < e[0].length; i++) e[0][i] *= 2;
    assertArrayEquals(e[0], wBuf.toDoubleArray());
  }

  @Test void aLazilyZeroedGradientOfAnotherDtypeIsNotClaimed() {
    Tensor x = ints(4, 3), w = ints(2, 3).requiresGrad(true), weights = ints(4, 2);
    Tensor buf = Tensor.zeros(Shape.of(2, 3), DType.F32, CPU);   // an f32 buffer for an f64 weight
    w.setGrad(buf);
    w.zeroGradLazily();
    backwardThrough(LinAlg.linear(x, w, null), weights);
    assertTrue(w.grad() == buf);
    assertArrayEquals(expected(x, weights)[0], buf.toDoubleArray(), "computed in f64, then copied (small integers: exact in f32)");
  }

  @Test void aLazilyZeroedGradientOfAWeightUsedTwiceGetsBothContributions() {
    Tensor x1 = ints(3, 4), x2 = ints(5, 4), w = ints(2, 4).requiresGrad(true), g1 = ints(3, 2), g2 = ints(5, 2);
    Tensor buf = ints(2, 4);
    w.setGrad(buf);
    w.zeroGradLazily();
    Tensor loss = Arith.add(Reduce.sum(Arith.mul(LinAlg.linear(x1, w, null), g1)), Reduce.sum(Arith.mul(LinAlg.linear(x2, w, null), g2)));
    Autograd.backward(loss);
    double[] a = expected(x1, g1)[0], c = expected(x2, g2)[0];
    for (int i = 0; i < a.length; i++) a[i] += c[i];
    assertTrue(w.grad() == buf);
    assertArrayEquals(a, buf.toDoubleArray(), "the first use overwrote the buffer, the second added to it");
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
    // the same backward into existing (lazily zeroed) gradients: written in place, bit for bit the same values
    Tensor wGrad = w.grad(), bGrad = b.grad();
    w.zeroGradLazily();
    b.zeroGradLazily();
    Autograd.backward(Reduce.sum(Arith.mul(io.colossal4j.ops.Norm.layerNorm(x, w, b, 1e-5), weights)));
    assertArrayEquals(freshW, w.grad().toDoubleArray());
    assertArrayEquals(freshB, b.grad().toDoubleArray());
    assertTrue(w.grad() == wGrad && b.grad() == bGrad, "the kernels wrote into the existing gradients");
  }
}
