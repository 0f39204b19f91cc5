package io.colossal4j.distributed.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.colossal4j.distributed.Reduction;
import io.colossal4j.tensor.DType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The f32 element loops of the collectives (Vector API, with a scalar tail) against Java's scalar
 * operators, bit for bit: every length from 0 to 70 (so every tail length of 4, 8 or 16 lanes) at an odd
 * element offset (unaligned), on values that include signed zeros, infinities and NaN, where vector
 * max/min instructions and {@link Math#max}/{@link Math#min} could disagree. NaNs compare by
 * {@link Float#floatToIntBits} (any NaN is NaN; payloads are not specified).
 */
class ElementwiseTest {
  static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;
  static final float[] SPECIAL = {0f, -0f, 1f, -1f, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.NaN, Float.MIN_VALUE, -3.5f};

  @Test void combineAccumulateAndDivideMatchScalarOperators() {
    Random rnd = new Random(3);
    try (Arena arena = Arena.ofConfined()) {
      for (int n = 0; n <= 70; n++) {
        MemorySegment a = arena.allocate(4L * n + 4), b = arena.allocate(4L * n + 4), out = arena.allocate(4L * n + 4);
        float[] x = new float[n], y = new float[n];
        for (int i = 0; i < n; i++) {
          x[i] = rnd.nextInt(3) == 0 ? SPECIAL[rnd.nextInt(SPECIAL.length)] : (float) rnd.nextGaussian();
          y[i] = rnd.nextInt(3) == 0 ? SPECIAL[rnd.nextInt(SPECIAL.length)] : (float) rnd.nextGaussian();
          a.set(F, 4 + 4L * i, x[i]);
          b.set(F, 4 + 4L * i, y[i]);
        }
        for (Reduction op : Reduction.values()) {
          Elementwise.combine(op, DType.F32, a, 4, b, 4, out, 4, n);
          for (int i = 0; i < n; i++) check(expected(op, x[i], y[i]), out.get(F, 4 + 4L * i), op + " n=" + n + " i=" + i + " of " + x[i] + ", " + y[i]);
          MemorySegment acc = arena.allocate(4L * n + 4);
          MemorySegment.copy(a, 0, acc, 0, 4L * n + 4);
          Elementwise.accumulate(op, DType.F32, acc, 4, b, 4, n);
          for (int i = 0; i < n; i++) check(expected(op, x[i], y[i]), acc.get(F, 4 + 4L * i), "accumulate " + op + " n=" + n + " i=" + i);
        }
        Elementwise.divide(DType.F32, a, 4, n, 3);
        for (int i = 0; i < n; i++) check(x[i] / 3, a.get(F, 4 + 4L * i), "divide n=" + n + " i=" + i);
      }
    }
  }

  private static float expected(Reduction op, float x, float y) {
    return switch (op) {
      case SUM, AVG -> x + y;
      case MAX -> Math.max(x, y);
      case MIN -> Math.min(x, y);
    };
  }

  private static void check(float expected, float got, String what) {
    assertEquals(Float.floatToIntBits(expected), Float.floatToIntBits(got), what + ": expected " + expected + ", got " + got);
  }
}
