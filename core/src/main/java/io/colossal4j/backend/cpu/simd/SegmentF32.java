package io.colossal4j.backend.cpu.simd;

import io.colossal4j.backend.BinaryOp;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * f32 loops over raw memory (byte offsets, unit stride, any alignment) for code that works below tensors,
 * such as the collectives combining shared-memory slices. Single-threaded: the caller owns the thread.
 * Lane results equal the scalar ones bit for bit ({@code +}, {@code /}, {@link Math#max}, {@link Math#min}
 * are exactly rounded or exact), so vector and scalar paths may be mixed without changing any value.
 */
public final class SegmentF32 {
  private SegmentF32() {}

  private static final VectorSpecies<Float> S = VMath.S;
  private static final int STEP = S.vectorByteSize();
  private static final ByteOrder NATIVE = ByteOrder.nativeOrder();
  private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;

  /**
   * out[i] = op(a[i], b[i]) for n floats, op one of ADD, MAX, MIN. out may alias a or b element for
   * element (each lane is read before it is written).
   */
  public static void combine(BinaryOp op, MemorySegment a, long aOff, MemorySegment b, long bOff, MemorySegment out, long outOff, long n) {
    long bytes = n << 2;
    // one loop per operator: the Vector API compiles lanewise operations only for constant operators
    long j = switch (op) {
      case ADD -> {
        long i = 0;
        for (; i + STEP <= bytes; i += STEP)
          FloatVector.fromMemorySegment(S, a, aOff + i, NATIVE).add(FloatVector.fromMemorySegment(S, b, bOff + i, NATIVE)).intoMemorySegment(out, outOff + i, NATIVE);
        yield i;
      }
      case MAX -> {
        long i = 0;
        for (; i + STEP <= bytes; i += STEP)
          FloatVector.fromMemorySegment(S, a, aOff + i, NATIVE).max(FloatVector.fromMemorySegment(S, b, bOff + i, NATIVE)).intoMemorySegment(out, outOff + i, NATIVE);
        yield i;
      }
      case MIN -> {
        long i = 0;
        for (; i + STEP <= bytes; i += STEP)
          FloatVector.fromMemorySegment(S, a, aOff + i, NATIVE).min(FloatVector.fromMemorySegment(S, b, bOff + i, NATIVE)).intoMemorySegment(out, outOff + i, NATIVE);
        yield i;
      }
      default -> throw new IllegalArgumentException("SegmentF32.combine supports ADD, MAX and MIN, not " + op);
    };
    for (; j < bytes; j += 4) {
      float x = a.get(F, aOff + j), y = b.get(F, bOff + j);
      out.set(F, outOff + j, switch (op) {
        case MAX -> Math.max(x, y);
        case MIN -> Math.min(x, y);
        default -> x + y;
      });
    }
  }

  /**
   * a[i] = b[i] = op(a[i], b[i]) / divisor for n floats (op one of ADD, MAX, MIN; divisor 1 for none): the
   * result of two members' copies written back into both in one pass, bit-identical to {@link #combine}
   * followed by {@link #divide} and a copy. a and b must not overlap.
   */
  public static void combineIntoBoth(BinaryOp op, MemorySegment a, long aOff, MemorySegment b, long bOff, long n, float divisor) {
    long bytes = n << 2, i = 0;
    switch (op) {   // one loop per operator: the Vector API compiles lanewise operations only for constant operators
      case ADD -> {
        if (divisor == 1f) for (; i + STEP <= bytes; i += STEP) both(load(a, aOff + i).add(load(b, bOff + i)), a, aOff + i, b, bOff + i);
        else for (; i + STEP <= bytes; i += STEP) both(load(a, aOff + i).add(load(b, bOff + i)).div(divisor), a, aOff + i, b, bOff + i);
      }
      case MAX -> { for (; i + STEP <= bytes; i += STEP) both(load(a, aOff + i).max(load(b, bOff + i)).div(divisor), a, aOff + i, b, bOff + i); }
      case MIN -> { for (; i + STEP <= bytes; i += STEP) both(load(a, aOff + i).min(load(b, bOff + i)).div(divisor), a, aOff + i, b, bOff + i); }
      default -> throw new IllegalArgumentException("SegmentF32.combineIntoBoth supports ADD, MAX and MIN, not " + op);
    }
    for (; i < bytes; i += 4) {
      float x = a.get(F, aOff + i), y = b.get(F, bOff + i);
      float r = switch (op) {
        case MAX -> Math.max(x, y);
        case MIN -> Math.min(x, y);
        default -> x + y;
      } / divisor;
      a.set(F, aOff + i, r);
      b.set(F, bOff + i, r);
    }
  }

  private static FloatVector load(MemorySegment m, long off) { return FloatVector.fromMemorySegment(S, m, off, NATIVE); }

  private static void both(FloatVector v, MemorySegment a, long aOff, MemorySegment b, long bOff) {
    v.intoMemorySegment(a, aOff, NATIVE);
    v.intoMemorySegment(b, bOff, NATIVE);
  }

  /** x[i] = x[i] / divisor for n floats. */
  public static void divide(MemorySegment x, long off, long n, float divisor) {
    long bytes = n << 2, j = 0;
    for (; j + STEP <= bytes; j += STEP)
      FloatVector.fromMemorySegment(S, x, off + j, NATIVE).div(divisor).intoMemorySegment(x, off + j, NATIVE);
    for (; j < bytes; j += 4) x.set(F, off + j, x.get(F, off + j) / divisor);
  }
}
