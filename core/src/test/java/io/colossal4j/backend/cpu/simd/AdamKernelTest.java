package io.colossal4j.backend.cpu.simd;

import static io.colossal4j.testing.GradCheck.assertClose;

import io.colossal4j.backend.Backend;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.optim.Adam;
import io.colossal4j.optim.ParamGroup;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/**
 * The fused f32 Adam/AdamW step of the fast CPU kernels (what {@link Adam} uses there) against the same
 * optimizer on the scalar reference backend, which composes the update op by op in double with one f32
 * rounding per stored value. Sizes cover a vector tail and a tensor long enough to be split over threads.
 * Tolerance: the f32 kernel rounds about ten times per element per step, each ≤ 2^-24 relative, on
 * parameters of order 1 and updates of order lr = 0.1, over three steps: ≲ 30·6e-8 ≈ 2e-6; 4e-6 absolute.
 */
class AdamKernelTest {
  static final CpuBackend FAST = CpuBackend.create(2);
  static final Backend REF = CpuBackend.reference();

  @AfterAll static void close() { FAST.close(); }

  @Test void fusedStepMatchesTheComposedReference() {
    for (boolean decoupled : new boolean[] {true, false})
      for (int n : new int[] {1, 37, 70_001}) {
        Random r = new Random(n);
        float[] init = rand(r, n);
        float[][] grads = {rand(r, n), rand(r, n), rand(r, n)};
        Tensor pf = Tensor.of(init, Shape.of(n), FAST), pr = Tensor.of(init, Shape.of(n), REF);
        Adam of = new Adam(List.of(new ParamGroup("all", Map.of("w", pf), 0.05, 1)), 0.9, 0.99, 1e-8, decoupled);
        Adam or = new Adam(List.of(new ParamGroup("all", Map.of("w", pr), 0.05, 1)), 0.9, 0.99, 1e-8, decoupled);
        for (float[] g : grads) {
          pf.setGrad(Tensor.of(g, Shape.of(n), FAST));
          pr.setGrad(Tensor.of(g, Shape.of(n), REF));
          of.step(0.1);
          or.step(0.1);
        }
        assertClose(pr.toDoubleArray(), pf.toDoubleArray(), 4e-6, 0, "params n=" + n + " decoupled=" + decoupled);
        assertClose(or.stateDict().get("w.exp_avg_sq").toDoubleArray(), of.stateDict().get("w.exp_avg_sq").toDoubleArray(), 1e-6, 0, "exp_avg_sq");
      }
  }

  private static float[] rand(Random r, int n) {
    float[] x = new float[n];
    for (int i = 0; i < n; i++) x[i] = (float) (2 * r.nextDouble() - 1);
    return x;
  }
}
