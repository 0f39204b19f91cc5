package io.colossal4j.backend.cuda;

import static io.colossal4j.backend.cuda.CudaTestSupport.gpu;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.autograd.Autograd;
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
 * The CUDA allocator path of deterministic release: training steps of an MLP (L layers of tanh(linear(x)),
 * batch n, width d, f32) inside {@code openStep} return their memory to the caching allocator without any
 * garbage collection, reuse the same device blocks step after step, stay within the derived peak, fail
 * loudly on a released tensor, and compute the CPU reference's gradients.
 */
class CudaStepMemoryTest {
  static final int L = 4, N = 2048, D = 512;
  static final long ACT = (long) N * D * 4;  // 4 MiB: an exact size class (1/8 of a power of two)
  static final long W = (long) D * D * 4;    // 1 MiB

  static List<Tensor> params(io.colossal4j.backend.Backend b) {
    Random r = new Random(3);
    List<Tensor> ps = new ArrayList<>();
    for (int i = 0; i < L; i++) {
      ps.add(Tensor.of(gauss(r, D * D, 0.05), Shape.of(D, D), DType.F32, b).requiresGrad(true));
      ps.add(Tensor.of(gauss(r, D, 0.05), Shape.of(D), DType.F32, b).requiresGrad(true));
    }
    return ps;
  }

  static double[] gauss(Random r, int n, double s) {
    double[] v = new double[n];
    for (int i = 0; i < n; i++) v[i] = r.nextGaussian() * s;
    return v;
  }

  static Tensor forward(List<Tensor> ps, Tensor x, List<Tensor> seen) {
    Tensor h = x;
    for (int i = 0; i < L; i++) {
      h = Arith.tanh(LinAlg.linear(h, ps.get(2 * i), ps.get(2 * i + 1)));
      seen.add(h);
    }
    return Reduce.sum(h);
  }

  @Test void stepsReleaseWithoutGcReuseBlocksAndStayWithinTheBound() {
    CudaBackend g = gpu();
    List<Tensor> ps = params(g);
    Tensor x = Tensor.of(gauss(new Random(4), N * D, 1), Shape.of(N, D), DType.F32, g);
    long collections = g.collections();
    long blocksAfterFirst = -1;
    for (int step = 0; step < 4; step++) {
      g.synchronize();
      g.resetPeakMemory();
      long before = g.memoryStats().totalCurrent();
      List<Tensor> seen = new ArrayList<>();
      try (var scope = g.openStep()) {
        StepLedger ledger = g.activeStep();
        Autograd.backward(forward(ps, x, seen));
        assertTrue(ledger.stats().releasedEarly() > 0, "released during backward: " + ledger.stats());
        assertEquals(3, ledger.live(), "live after backward: the loss, its seed gradient, the unheld last output");
        Tensor first = seen.getFirst();
        TensorException e = assertThrows(TensorException.class, () -> Arith.add(first, first));
        assertTrue(e.getMessage().contains("released"), e.getMessage());
      }
      for (Tensor p : ps) {   // as an optimizer's zeroGrad would: gradients are not step-owned
        p.grad().storage().release();
        p.setGrad(null);
      }
      long peak = g.peakMemoryInUse() - before;
      // forward keeps 2 activations per layer (the linear's output for tanh, tanh's for the next linear);
      // the first backward rules add the incoming gradient, two input gradients and one weight gradient
      long bound = (2L * L + 3) * ACT + W + (1L << 20);
      // step 0 also creates the backend's lasting buffers (cuBLASLt's 32 MiB workspace, the fault words)
      if (step > 0) assertTrue(peak <= bound, "step " + step + ": peak " + peak + " B above the bound " + bound + " B");
      if (step == 1) blocksAfterFirst = g.deviceAllocations();
      if (step > 1) assertEquals(blocksAfterFirst, g.deviceAllocations(), "steps reuse the cached blocks");
    }
    assertEquals(collections, g.collections(), "no garbage collection was needed");
    for (Tensor p : ps) p.storage().release();
    x.storage().release();
  }

  @Test void gradientsMatchTheCpuReference() {
    CudaBackend g = gpu();
    CpuBackend cpu = CpuBackend.create(1);
    List<Tensor> pg = params(g), pc = params(cpu);
    double[] xs = gauss(new Random(5), N * D, 1);
    try (var scope = g.openStep()) {
      Autograd.backward(forward(pg, Tensor.of(xs, Shape.of(N, D), DType.F32, g), new ArrayList<>()));
    }
    Autograd.backward(forward(pc, Tensor.of(xs, Shape.of(N, D), DType.F32, cpu), new ArrayList<>()));
    // f32 GEMMs of depth 512 and 2048 in another summation order: 1e-3 relative to the largest element
    for (int i = 0; i < pg.size(); i++) {
      double[] a = pg.get(i).grad().toDoubleArray(), b = pc.get(i).grad().toDoubleArray();
      double scale = 0;
      for (double v : b) scale = Math.max(scale, Math.abs(v));
      for (int j = 0; j < a.length; j++) assertEquals(b[j], a[j], 1e-3 * scale, "param " + i + " element " + j);
    }
    for (Tensor p : pg) { p.grad().storage().release(); p.storage().release(); }
  }
}
