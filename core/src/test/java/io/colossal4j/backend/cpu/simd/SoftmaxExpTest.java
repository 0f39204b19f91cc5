package io.colossal4j.backend.cpu.simd;

import static io.colossal4j.backend.cpu.simd.VMath.S;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.Random;
import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.Test;

/**
 * {@link VMath#expNonPositive}, softmax's exponential, against {@link Math#exp} in double on a dense grid of
 * its whole domain. Bound: 2 ulp (ulp = the f32 spacing at the exact value) where e^x is a normal f32, the
 * same bound as {@link VMath#exp} (same reduction and polynomial, exact scaling); below x = −87.3365 the
 * result is 0, whose absolute error is under the smallest normal, 2^-126.
 */
class SoftmaxExpTest {
  private static final double MIN_NORMAL = 0x1p-126;

  @Test void withinTwoUlpOverTheNormalRangeAndZeroBelow() {
    int points = 1_000_000;
    float[] x = new float[points + S.length()];
    for (int i = 0; i < points; i++) x[i] = (float) (-104.0 * i / (points - 1)); // step 1e-4 over [-104, 0]
    x[points - 1] = -87.33654f;                                                    // the last normal input
    double worst = 0;
    for (int i = 0; i < points; i += S.length()) {
      float[] y = VMath.expNonPositive(FloatVector.fromArray(S, x, i)).toArray();
      for (int l = 0; l < S.length() && i + l < points; l++) {
        double exact = Math.exp(x[i + l]);
        if (exact >= MIN_NORMAL) {
          double ulps = Math.abs(y[l] - exact) / Math.ulp((float) exact);
          worst = Math.max(worst, ulps);
        } else {
          assertTrue(y[l] >= 0 && y[l] <= MIN_NORMAL, "e^" + x[i + l] + " = " + y[l] + ", want a value in [0, 2^-126]");
        }
      }
    }
    assertTrue(worst <= 2, "worst error " + worst + " ulp, want <= 2");
  }

  @Test void specialValues() {
    float[] x = new float[S.length()];
    x[0] = Float.NaN;
    x[1] = Float.NEGATIVE_INFINITY;
    x[2] = -0f;
    x[3] = -1e30f;
    float[] y = VMath.expNonPositive(FloatVector.fromArray(S, x, 0)).toArray();
    assertTrue(Float.isNaN(y[0]), "e^NaN = " + y[0]);
    assertEquals(0f, y[1], "e^-inf");
    assertEquals(1f, y[2], "e^-0");
    assertEquals(0f, y[3], "e^-1e30");
  }

  /**
   * The whole softmax kernel on rows spanning [−120, 120] (so many terms underflow) with a masked tail
   * (n = 1031), on 2 threads, against the double-precision reference; one row holds a NaN (all of it must be
   * NaN) and one row −inf entries (exactly 0 there). Tolerance as in the conformance suite: 4·(n + 8)·2^-24
   * absolute (relative for outputs above 1, log-softmax's), the error of two length-n f32 reductions.
   */
  @Test void softmaxMatchesTheReferenceOnWideRows() {
    int rows = 37, n = 1031;
    Random rnd = new Random(7);
    float[] d = new float[rows * n];
    for (int i = 0; i < d.length; i++) d[i] = (rnd.nextFloat() * 2 - 1) * 120;
    d[3 * n + 500] = Float.NaN;
    for (int j = 0; j < n; j += 3) d[5 * n + j] = Float.NEGATIVE_INFINITY;
    try (CpuBackend fast = CpuBackend.create(2)) {
      CpuBackend ref = CpuBackend.reference();
      for (boolean log : new boolean[] {false, true}) {
        Tensor x = Tensor.of(d, Shape.of(rows, n), fast), xr = Tensor.of(d, Shape.of(rows, n), ref);
        Tensor y = Tensor.empty(x.shape(), x.dtype(), fast), yr = Tensor.empty(x.shape(), x.dtype(), ref);
        fast.kernels().softmax(x, 1, log, y);
        ref.kernels().softmax(xr, 1, log, yr);
        float[] got = y.toFloatArray(), want = yr.toFloatArray();
        double tol = 4 * (n + 8) * 0x1p-24 * (log ? 16 : 1);
        for (int i = 0; i < got.length; i++) {
          String at = "softmax log=" + log + " at row " + i / n + " col " + i % n;
          if (i / n == 3) assertTrue(Float.isNaN(got[i]), at + ": " + got[i] + ", want NaN (the row holds a NaN)");
          else if (Float.isInfinite(want[i]) || want[i] == 0) assertEquals(want[i], got[i], at);
          else assertTrue(Math.abs(got[i] - want[i]) <= tol * Math.max(1, Math.abs(want[i])), at + ": " + got[i] + " vs " + want[i]);
        }
      }
    }
  }
}
