package io.colossal4j.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.colossal4j.backend.AdamUpdate;
import io.colossal4j.backend.Backend;
import io.colossal4j.optim.Adam;
import io.colossal4j.optim.ParamGroup;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The reference fused Adam step against the optimizer's own (unfused, op-by-op) update, in f64 so both are
 * exact to rounding: three steps of Adam and of AdamW with weight decay must give the same parameters.
 */
class ScalarAdamTest {
  private static final Backend CPU = CpuBackend.reference();

  @Test void fusedStepMatchesTheOptimizer() {
    for (boolean decoupled : new boolean[] {true, false}) {
      Random r = new Random(5);
      double[] init = r.doubles(12, -1, 1).toArray();
      double[][] grads = {r.doubles(12, -1, 1).toArray(), r.doubles(12, -1, 1).toArray(), r.doubles(12, -1, 1).toArray()};
      Tensor p1 = Tensor.of(init, Shape.of(3, 4), DType.F64, CPU), p2 = Tensor.of(init, Shape.of(3, 4), DType.F64, CPU);
      Adam opt = new Adam(List.of(new ParamGroup("all", Map.of("w", p1), 0.05, 1)), 0.9, 0.99, 1e-8, decoupled);
      Tensor m = Tensor.zeros(Shape.of(3, 4), DType.F64, CPU), v = Tensor.zeros(Shape.of(3, 4), DType.F64, CPU);
      for (int s = 0; s < 3; s++) {
        p1.setGrad(Tensor.of(grads[s], Shape.of(3, 4), DType.F64, CPU));
        opt.step(0.1);
        Tensor g = Tensor.of(grads[s], Shape.of(3, 4), DType.F64, CPU);
        CPU.kernels().adamStep(List.of(new AdamUpdate.Param(p2, g, m, v)), new AdamUpdate(0.1, 0.9, 0.99, 1e-8, 0.05, decoupled, s + 1));
      }
      // a handful of f64 roundings per step in a different order: 1e-14 absolute on values of order 1
      assertArrayEquals(p1.toDoubleArray(), p2.toDoubleArray(), 1e-14, "decoupled=" + decoupled);
    }
  }

  @Test void badHyperParametersAreRejected() {
    assertThrows(IllegalArgumentException.class, () -> new AdamUpdate(0.1, 0.9, 0.99, 1e-8, 0, true, 0));
    assertThrows(IllegalArgumentException.class, () -> new AdamUpdate(0.1, 1.0, 0.99, 1e-8, 0, true, 1));
  }
}
