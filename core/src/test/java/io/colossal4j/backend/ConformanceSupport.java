package io.colossal4j.backend;

import static org.junit.jupiter.api.Assertions.fail;

import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.Random;
import java.util.function.UnaryOperator;

/**
 * Helpers for running one kernel on the backend under test and on the scalar reference with the same
 * inputs: tensors are made in pairs from the same host data, views are applied to both sides alike, and
 * outputs are poisoned with NaN first so that an element the kernel forgets to write fails the comparison.
 */
final class ConformanceSupport {
  private ConformanceSupport() {}

  static final double U = 0x1p-24;   // unit roundoff of f32

  /** The same logical tensor on the backend under test ({@code t}) and on the reference ({@code r}). */
  record Pair(Tensor t, Tensor r) {
    Pair map(UnaryOperator<Tensor> view) { return new Pair(view.apply(t), view.apply(r)); }

    Shape shape() { return t.shape(); }
  }

  static Pair random(Backend under, Backend ref, Random rnd, Shape shape, double lo, double hi) {
    float[] data = new float[Math.toIntExact(shape.numel())];
    for (int i = 0; i < data.length; i++) data[i] = (float) (lo + (hi - lo) * rnd.nextDouble());
    return new Pair(Tensor.of(data, shape, under), Tensor.of(data, shape, ref));
  }

  /** Uninitialised outputs on both sides, filled with NaN (f32/f64) or a sentinel (integers). */
  static Pair poisoned(Backend under, Backend ref, Shape shape, DType dtype) {
    Tensor t = Tensor.empty(shape, dtype, under), r = Tensor.empty(shape, dtype, ref);
    double poison = dtype.isFloating() ? Double.NaN : -7;
    under.kernels().fill(t, poison);
    ref.kernels().fill(r, poison);
    return new Pair(t, r);
  }

  static Pair poisoned(Backend under, Backend ref, Shape shape) { return poisoned(under, ref, shape, DType.F32); }

  /** Per-element tolerance: the expected value, the element index, and the inputs' context give the bound. */
  @FunctionalInterface interface Tolerance { double at(int i, double expected); }

  static Tolerance ulps(double n) { return (i, e) -> n * Math.ulp((float) Math.abs(e)) + Float.MIN_NORMAL; }

  static Tolerance exact() { return (i, e) -> 0; }

  /**
   * Asserts equal element for element within {@code tol}; NaN must meet NaN (a poisoned, unwritten output
   * meets a number and fails). Names the case, the first bad index and the worst error.
   */
  static void assertClose(String what, Tensor actual, Tensor expected, Tolerance tol) {
    if (!actual.shape().equals(expected.shape())) fail(what + ": shape " + actual.shape() + " vs " + expected.shape());
    double[] a = actual.toDoubleArray(), e = expected.toDoubleArray();
    for (int i = 0; i < a.length; i++) {
      boolean ok = Double.isNaN(e[i]) ? Double.isNaN(a[i])
          : e[i] == a[i] || Math.abs(a[i] - e[i]) <= tol.at(i, e[i]);
      if (!ok) fail(what + ": element " + i + " of " + actual.shape() + " is " + a[i] + ", expected " + e[i]
          + " (tolerance " + tol.at(i, e[i]) + ")");
    }
  }

  /** A shape with the given dims, each drawn from the candidates: small primes, odd tails, powers of two. */
  static int pick(Random rnd, int... candidates) { return candidates[rnd.nextInt(candidates.length)]; }

  static CpuBackend reference() { return CpuBackend.reference(); }

  /** True when the reference implements the kernel (some reference kernels are still being written). */
  static boolean referenceHas(Runnable call) {
    try {
      call.run();
      return true;
    } catch (UnsupportedOperationException e) {
      return false;
    }
  }
}
