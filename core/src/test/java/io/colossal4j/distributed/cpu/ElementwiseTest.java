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

  /** The one-pass reduction of two copies writes op(x, y) (halved for AVG) into both, for every dtype (f32 bit for bit). */
  @Test void combineIntoBothWritesTheReductionIntoBothCopies() {
    Random rnd = new Random(5);
    try (Arena arena = Arena.ofConfined()) {
      for (int n = 0; n <= 70; n++) {
        for (Reduction op : Reduction.values()) {
          MemorySegment a = arena.allocate(4L * n + 4), b = arena.allocate(4L * n + 4);
          float[] x = new float[n], y = new float[n];
          for (int i = 0; i < n; i++) {
            x[i] = rnd.nextInt(3) == 0 ? SPECIAL[rnd.nextInt(SPECIAL.length)] : (float) rnd.nextGaussian();
            y[i] = rnd.nextInt(3) == 0 ? SPECIAL[rnd.nextInt(SPECIAL.length)] : (float) rnd.nextGaussian();
            a.set(F, 4 + 4L * i, x[i]);
            b.set(F, 4 + 4L * i, y[i]);
          }
          Elementwise.combineIntoBoth(op, DType.F32, a, 4, b, 4, n);
          for (int i = 0; i < n; i++) {
            float e = op == Reduction.AVG ? expected(op, x[i], y[i]) / 2 : expected(op, x[i], y[i]);
            check(e, a.get(F, 4 + 4L * i), "into both " + op + " n=" + n + " i=" + i + " (first copy)");
            check(e, b.get(F, 4 + 4L * i), "into both " + op + " n=" + n + " i=" + i + " (second copy)");
          }
        }
      }
      // other dtypes go through combine, divide and a copy: f64 sums of small integers are exact
      MemorySegment a = arena.allocate(8 * 5), b = arena.allocate(8 * 5);
      for (int i = 0; i < 5; i++) { a.setAtIndex(ValueLayout.JAVA_DOUBLE, i, i); b.setAtIndex(ValueLayout.JAVA_DOUBLE, i, 10 * i + 1); }
      Elementwise.combineIntoBoth(Reduction.AVG, DType.F64, a, 0, b, 0, 5);
      for (int i = 0; i < 5; i++) {
        assertEquals((11 * i + 1) / 2.0, a.getAtIndex(ValueLayout.JAVA_DOUBLE, i), 0.0);
        assertEquals((11 * i + 1) / 2.0, b.getAtIndex(ValueLayout.JAVA_DOUBLE, i), 0.0);
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
