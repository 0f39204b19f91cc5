package io.colossal4j.ops;

import static io.colossal4j.testing.GradCheck.check;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.backend.Backend;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Rng;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/** Dropout and drop-path: keep statistics, exact scaling, reproducibility from the Rng state, gradients. */
class DropoutTest {
  static final Backend CPU = CpuBackend.reference();

  /**
   * The number of kept elements K of n independent trials is Binomial(n, q), q = 1 − p, with standard
   * deviation sqrt(n·q·(1−q)). We accept |K − n·q| <= 6 sd: a correct generator fails this with
   * probability about 2e-9 (normal tail at 6 sd; n is large enough for the normal approximation), while a
   * mask whose keep probability is off by more than 6 sd / n (0.007 to 0.012 for the cases below) is caught.
   */
  static void assertBinomial(long kept, long n, double q) {
    double sd = Math.sqrt(n * q * (1 - q));
    assertTrue(Math.abs(kept - n * q) <= 6 * sd, "kept " + kept + " of " + n + ", expected " + n * q + " ± " + 6 * sd);
  }

  @Test void keepFractionAndScale() {
    int n = 60_000;
    for (double p : new double[] {0.1, 0.5, 0.9}) {
      Tensor ones = Tensor.full(Shape.of(300, 200), DType.F32, CPU, 1.0);
      double[] y = Dropout.dropout(ones, p, new Rng(11), true).toDoubleArray();
      long kept = Arrays.stream(y).filter(v -> v != 0).count();
      assertBinomial(kept, n, 1 - p);
      float scale = (float) (1 / (1 - p));
      for (double v : y) assertTrue(v == 0 || v == scale, "kept values are exactly 1/(1-p) = " + scale + ", got " + v);
    }
  }

  @Test void sameRngStateGivesSameMask() {
    Tensor x = Tensor.full(Shape.of(5, 7), DType.F64, CPU, 1.0);
    Rng a = new Rng(3);
    Rng.State start = a.snapshot();
    double[] first = Dropout.dropout(x, 0.5, a, true).toDoubleArray();
    assertEquals(start.counter() + (35 + 3) / 4, a.counter(), "the stream advances by ceil(n/4) blocks");
    double[] second = Dropout.dropout(x, 0.5, a, true).toDoubleArray();
    assertFalse(Arrays.equals(first, second), "a later draw gives another mask");
    a.restore(start);
    assertArrayEquals(first, Dropout.dropout(x, 0.5, a, true).toDoubleArray(), "restored state, same mask");
    assertArrayEquals(first, Dropout.dropout(x, 0.5, new Rng(3), true).toDoubleArray(), "a fresh stream with the seed, same mask");
    // the mask depends on the stream, not on the dtype of x
    Tensor x32 = Tensor.full(Shape.of(5, 7), DType.F32, CPU, 1.0);
    assertArrayEquals(first, Dropout.dropout(x32, 0.5, new Rng(3), true).toDoubleArray());
  }

  @Test void evalAndZeroProbabilityAreTheIdentity() {
    Tensor x = Tensor.full(Shape.of(3), DType.F32, CPU, 2.0);
    Rng rng = new Rng(1);
    assertSame(x, Dropout.dropout(x, 0.5, rng, false));
    assertSame(x, Dropout.dropout(x, 0.0, rng, true));
    assertSame(x, Dropout.dropPath(x, 0.5, rng, false));
    assertEquals(0, rng.counter(), "no numbers drawn");
  }

  @Test void probabilityIsValidated() {
    Tensor x = Tensor.full(Shape.of(3), DType.F32, CPU, 2.0);
    for (double p : new double[] {-0.1, 1.0, Double.NaN}) {
      var e = assertThrows(TensorException.class, () -> Dropout.dropout(x, p, new Rng(1), true));
      assertTrue(e.getMessage().contains("[0, 1)") && e.getMessage().contains(String.valueOf(p)), e.getMessage());
      assertThrows(TensorException.class, () -> Dropout.dropPath(x, p, new Rng(1), true));
    }
    assertThrows(TensorException.class, () -> Dropout.dropout(x, 0.5, null, true));
  }

  @Test void gradientIsTheScaledMask() {
    // a fresh stream per evaluation, so every finite-difference probe sees the same mask
    check(CPU, t -> Dropout.dropout(t[0], 0.4, new Rng(5), true), Shape.of(4, 6));
    check(CPU, t -> Dropout.dropPath(Views.transpose(t[0], 0, 1), 0.5, new Rng(6), true), Shape.of(3, 8));
  }

  @Test void dropPathDropsWholeSamples() {
    int samples = 20_000;
    double p = 0.25, keep = 1 - p;
    double[] y = Dropout.dropPath(Tensor.full(Shape.of(samples, 3), DType.F64, CPU, 1.0), p, new Rng(9), true).toDoubleArray();
    long kept = 0;
    for (int s = 0; s < samples; s++) {
      double v = y[3 * s];
      assertTrue(v == 0 || v == 1 / keep, "sample " + s + " scaled by 1/keep or dropped, got " + v);
      assertTrue(y[3 * s + 1] == v && y[3 * s + 2] == v, "sample " + s + " is kept or dropped as a whole");
      if (v != 0) kept++;
    }
    assertBinomial(kept, samples, keep);
  }
}
