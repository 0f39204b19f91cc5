package io.colossal4j.autograd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.backend.StepLedger;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.ops.Arith;
import io.colossal4j.ops.LinAlg;
import io.colossal4j.ops.Reduce;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Deterministic release of a step's memory on the CPU (the bookkeeping is shared with the CUDA backend):
 * saved activations and gradients go back while backward runs, a rule's temporaries when it returns,
 * everything else when the step closes; a tensor used after its memory went back fails loudly; and the
 * numbers are unchanged.
 *
 * <p>The model: L layers of {@code tanh(linear(x))}, width d, batch n, f32, loss = sum of the last output.
 * Shapes are multiples of 16 floats, so the arena's 64-byte rounding adds nothing.
 */
class StepMemoryTest {
  static final int L = 4, N = 64, D = 32;
  static final long ACT = (long) N * D * 4;   // one [n, d] f32 activation
  static final long W = (long) D * D * 4;     // one [d, d] f32 weight-gradient temporary

  record Mlp(List<Tensor> w, List<Tensor> b) {
    static Mlp create(CpuBackend cpu, long seed) {
      Random r = new Random(seed);
      List<Tensor> w = new ArrayList<>(), b = new ArrayList<>();
      for (int i = 0; i < L; i++) {
        w.add(param(cpu, r, D, D));
        b.add(param(cpu, r, D));
      }
      return new Mlp(w, b);
    }

    /** The layer outputs (pre-activation y_i, post-activation z_i), for inspection; the last entry is the loss. */
    List<Tensor> forward(Tensor x) {
      List<Tensor> seen = new ArrayList<>();
      Tensor h = x;
      for (int i = 0; i < L; i++) {
        Tensor y = LinAlg.linear(h, w.get(i), b.get(i));
        h = Arith.tanh(y);
        seen.add(y);
        seen.add(h);
      }
      seen.add(Reduce.sum(h));
      return seen;
    }
  }

  static Tensor param(CpuBackend cpu, Random r, int... dims) {
    Shape s = Shape.of(dims);
    double[] v = new double[Math.toIntExact(s.numel())];
    for (int i = 0; i < v.length; i++) v[i] = r.nextGaussian() * 0.2;
    return Tensor.of(v, s, DType.F32, cpu).requiresGrad(true);  // made outside any step: not step-owned
  }

  static Tensor input(CpuBackend cpu) {
    Random r = new Random(9);
    double[] v = new double[N * D];
    for (int i = 0; i < v.length; i++) v[i] = r.nextGaussian();
    return Tensor.of(v, Shape.of(N, D), DType.F32, cpu);
  }

  @Test void savedActivationsGoBackDuringBackwardAndTheRootSurvives() {
    try (CpuBackend cpu = CpuBackend.create(1)) {
      Mlp m = Mlp.create(cpu, 1);
      Tensor x = input(cpu);
      try (var step = cpu.openStep()) {
        StepLedger ledger = cpu.activeStep();
        List<Tensor> seen = m.forward(x);
        Tensor loss = seen.getLast();
        long forwardAllocs = ledger.stats().allocated();
        assertEquals(0, ledger.stats().releasedEarly(), "nothing is released during the forward pass");
        Autograd.backward(loss);
        StepLedger.Stats s = ledger.stats();
        // every y_i (saved by tanh) and z_i for i < L (saved by the next linear) is released by its last holder
        for (int i = 0; i < seen.size() - 2; i++) assertTrue(seen.get(i).storage().isReleased(), "activation " + i + " still live");
        // z_L was consumed by sum, which saves nothing: it was never held, so the step releases it at its end
        assertFalse(seen.get(seen.size() - 2).storage().isReleased());
        assertFalse(loss.storage().isReleased(), "the root survives its backward pass");
        assertEquals(loss.item(), loss.item());
        // backward allocated gradients and temporaries; all but the root's gradient and unheld z_L went back
        assertTrue(s.allocated() > forwardAllocs, "backward allocates");
        long live = ledger.live();
        assertEquals(3, live, "live after backward: the loss, its gradient (kept for the caller) and z_L; stats " + s);
      }
      assertTrue(m.w().getFirst().grad() != null && !m.w().getFirst().grad().storage().isReleased(), "leaf gradients are not step-owned");
    }
  }

  @Test void aTensorUsedAfterItsMemoryWentBackFailsLoudly() {
    try (CpuBackend cpu = CpuBackend.create(1)) {
      Mlp m = Mlp.create(cpu, 2);
      Tensor y0;
      try (var step = cpu.openStep()) {
        List<Tensor> seen = m.forward(input(cpu));
        y0 = seen.getFirst();
        Autograd.backward(seen.getLast());
        TensorException e = assertThrows(TensorException.class, () -> Arith.add(y0, y0));
        assertTrue(e.getMessage().contains("released"), e.getMessage());
      }
      assertThrows(TensorException.class, y0::toDoubleArray);
    }
  }

  /**
   * Peak live step bytes. Forward keeps y_i and z_i (2L activations). The first backward rules add at most:
   * the incoming gradient, tanh's input gradient, linear's input gradient (3 activations) and the weight
   * gradient before it is accumulated into the leaf (one [d, d]) plus the bias gradient ([d]) and scalars.
   * Without early release every one of the L layers' backward allocations would stay until the step ends.
   */
  @Test void peakOfAStepStaysWithinTheDerivedBound() {
    try (CpuBackend cpu = CpuBackend.create(1)) {
      Mlp m = Mlp.create(cpu, 3);
      Tensor x = input(cpu);
      cpu.resetStepPeak();
      try (var step = cpu.openStep()) {
        Autograd.backward(m.forward(x).getLast());
      }
      long peak = cpu.stepPeakBytes();
      long bound = (2L * L + 3) * ACT + W + 4096;
      assertTrue(peak <= bound, "peak " + peak + " B above the bound " + bound + " B");
      long withoutRelease = 2L * L * ACT + L * (3 * ACT + W);
      assertTrue(peak < withoutRelease * 3 / 4, "peak " + peak + " B is not clearly below keeping everything (" + withoutRelease + " B)");
    }
  }

  @Test void releaseChangesNoNumber() {
    try (CpuBackend cpu = CpuBackend.create(1)) {
      Mlp inStep = Mlp.create(cpu, 4), plain = Mlp.create(cpu, 4);
      Tensor x = input(cpu);
      Autograd.backward(plain.forward(x).getLast());
      try (var step = cpu.openStep()) {
        Autograd.backward(inStep.forward(x).getLast());
      }
      for (int i = 0; i < L; i++) {
        assertArrayEquals(plain.w().get(i).grad().toDoubleArray(), inStep.w().get(i).grad().toDoubleArray(), 0.0, "w" + i);
        assertArrayEquals(plain.b().get(i).grad().toDoubleArray(), inStep.b().get(i).grad().toDoubleArray(), 0.0, "b" + i);
      }
    }
  }

  @Test void retainGraphKeepsSavedActivationsForASecondPass() {
    try (CpuBackend cpu = CpuBackend.create(1)) {
      Mlp m = Mlp.create(cpu, 5);
      try (var step = cpu.openStep()) {
        List<Tensor> seen = m.forward(input(cpu));
        Tensor loss = seen.getLast();
        Autograd.backward(loss, Tensor.full(loss.shape(), DType.F32, cpu, 1.0), true);
        assertFalse(seen.getFirst().storage().isReleased());
        double[] once = m.w().getFirst().grad().toDoubleArray();
        Autograd.backward(loss, Tensor.full(loss.shape(), DType.F32, cpu, 1.0), false);
        double[] twice = m.w().getFirst().grad().toDoubleArray();
        for (int i = 0; i < once.length; i++) assertEquals(2 * once[i], twice[i], 1e-6 * Math.abs(once[i]) + 1e-7);
        assertTrue(seen.getFirst().storage().isReleased());
      }
    }
  }
}
