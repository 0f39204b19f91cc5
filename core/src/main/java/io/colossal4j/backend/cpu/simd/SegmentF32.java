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

  /** x[i] = x[i] / divisor for n floats. */
  public static void divide(MemorySegment x, long off, long n, float divisor) {
    long bytes = n << 2, j = 0;
    for (; j + STEP <= bytes; j += STEP)
      FloatVector.fromMemorySegment(S, x, off + j, NATIVE).div(divisor).intoMemorySegment(x, off + j, NATIVE);
    for (; j < bytes; j += 4) x.set(F, off + j, x.get(F, off + j) / divisor);
  }
}
