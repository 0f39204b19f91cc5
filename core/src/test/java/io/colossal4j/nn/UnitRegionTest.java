package io.colossal4j.nn;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.autograd.Autograd;
import io.colossal4j.autograd.GradMode;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.ops.Arith;
import io.colossal4j.ops.LinAlg;
import io.colossal4j.ops.Reduce;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Units of a {@link UnitModel} as release regions inside a step: a residual unit {@code x + tanh(x w^T) w2^T}
 * allocates the second product only to add it to x (the add saves nothing), so it goes back when the unit
 * returns, while what backward needs and the unit's output stay; under no-grad only the output stays. The
 * gradients equal those of a run outside any step.
 */
class UnitRegionTest {
  static final int N = 8, D = 16;

  /** One residual unit, recording the tensors it made so the test can look at them. */
  static final class Residual extends Module {
    final Tensor w1, w2;
    final List<Tensor> made = new ArrayList<>();

    Residual(CpuBackend b, long seed) {
      Random r = new Random(seed);
      w1 = Tensor.of(r.doubles(D * D, -0.3, 0.3).toArray(), Shape.of(D, D), DType.F32, b).requiresGrad(true);
      w2 = Tensor.of(r.doubles(D * D, -0.3, 0.3).toArray(), Shape.of(D, D), DType.F32, b).requiresGrad(true);
    }

    @Override public Tensor forward(Tensor x) {
      Tensor h = Arith.tanh(LinAlg.linear(x, w1, null));
      Tensor p = LinAlg.linear(h, w2, null);
      made.clear();
      made.add(h);
      made.add(p);
      return Arith.add(x, p);
    }
  }

  static final class Model extends UnitModel {
    private final List<Unit> units = new ArrayList<>();

    Model(CpuBackend b) {
      for (int i = 0; i < 2; i++) units.add(new Unit("blocks." + i, "blocks." + i + ".", new Residual(b, i)));
    }

    Residual block(int i) { return (Residual) units.get(i).module(); }

    @Override public List<Unit> units() { return units; }
  }

  static Tensor input(CpuBackend b) {
    return Tensor.of(new Random(5).doubles(N * D, -1, 1).toArray(), Shape.of(N, D), DType.F32, b);
  }

  @Test void aUnitsUnsavedTemporariesGoBackWhenItReturns() {
    try (CpuBackend b = CpuBackend.create(1)) {
      Model m = new Model(b);
      try (var step = b.openStep()) {
        Tensor out = m.forward(input(b));
        Residual first = m.block(0);
        assertFalse(first.made.get(0).storage().isReleased(), "tanh's output is saved by the second linear");
        assertTrue(first.made.get(1).storage().isReleased(), "the product before the residual add is saved by nobody");
        assertFalse(out.storage().isReleased(), "the model's output stays");
        Autograd.backward(Reduce.sum(out));
      }
      Model plain = new Model(b);
      Autograd.backward(Reduce.sum(plain.forward(input(b))));
      for (int i = 0; i < 2; i++) {
        assertArrayEquals(plain.block(i).w1.grad().toDoubleArray(), m.block(i).w1.grad().toDoubleArray(), 0.0);
        assertArrayEquals(plain.block(i).w2.grad().toDoubleArray(), m.block(i).w2.grad().toDoubleArray(), 0.0);
      }
    }
  }

  @Test void underNoGradOnlyTheOutputStays() {
    try (CpuBackend b = CpuBackend.create(1)) {
      Model m = new Model(b);
      try (var step = b.openStep()) {
        Tensor out = GradMode.noGrad(() -> m.forward(input(b)));
        for (int i = 0; i < 2; i++) for (Tensor t : m.block(i).made) assertTrue(t.storage().isReleased());
        assertFalse(out.storage().isReleased());
        assertTrue(Double.isFinite(Reduce.sum(out).item()));
      }
    }
  }
}
