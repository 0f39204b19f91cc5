package io.colossal4j.autograd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.colossal4j.backend.Backend;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.ops.Arith;
import io.colossal4j.ops.LinAlg;
import io.colossal4j.ops.Reduce;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Autocast against the explicit graph it stands for: inside the region a linear layer over f32 tensors must
 * equal the same layer over bf16 casts of them, forward and gradients, bit for bit; the gradients reach the
 * f32 leaves (master weights) in f32; outside the region, and in a disabled sub-region, nothing is cast.
 */
class AutocastTest {
  private static final Backend CPU = CpuBackend.reference();

  private static Tensor leaf(Random r, int... dims) {
    Shape s = Shape.of(dims);
    double[] v = r.doubles(s.numel(), -1, 1).toArray();
    return Tensor.of(v, s, DType.F32, CPU).requiresGrad(true);
  }

  @Test void linearInsideTheRegionIsTheLinearOfTheCasts() {
    Random r = new Random(3);
    Tensor x = leaf(r, 5, 4), w = leaf(r, 3, 4), b = leaf(r, 3);
    Tensor x2 = x.detach().requiresGrad(true), w2 = w.detach().requiresGrad(true), b2 = b.detach().requiresGrad(true);
    Tensor y = Autocast.call(DType.BF16, () -> LinAlg.linear(x, w, b));
    Tensor y2 = LinAlg.linear(Arith.cast(x2, DType.BF16), Arith.cast(w2, DType.BF16), Arith.cast(b2, DType.BF16));
    assertEquals(DType.BF16, y.dtype());
    assertArrayEquals(y2.toDoubleArray(), y.toDoubleArray(), 0);
    Autograd.backward(Reduce.sum(Arith.cast(Arith.square(y), DType.F32)));
    Autograd.backward(Reduce.sum(Arith.cast(Arith.square(y2), DType.F32)));
    for (Tensor[] pair : new Tensor[][] {{x, x2}, {w, w2}, {b, b2}}) {
      assertEquals(DType.F32, pair[0].grad().dtype(), "master weights get f32 gradients");
      assertArrayEquals(pair[1].grad().toDoubleArray(), pair[0].grad().toDoubleArray(), 0);
    }
  }

  @Test void nothingIsCastOutsideOrInADisabledRegion() {
    Random r = new Random(4);
    Tensor a = leaf(r, 2, 3), m = leaf(r, 3, 2);
    assertEquals(DType.F32, LinAlg.matmul(a, m).dtype());
    Tensor inner = Autocast.call(DType.F16, () -> Autocast.disabled(() -> LinAlg.matmul(a, m)));
    assertEquals(DType.F32, inner.dtype());
    assertEquals(DType.F16, Autocast.call(DType.F16, () -> LinAlg.matmul(a, m)).dtype());
    assertEquals(java.util.Optional.empty(), Autocast.dtype());
    assertThrows(IllegalArgumentException.class, () -> Autocast.run(DType.F32, () -> {}));
  }
}
