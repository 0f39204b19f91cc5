package io.colossal4j.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Reads and writes one element of any dtype at a byte offset as a double: the slow, obvious path
 * the scalar kernels and tests use. Native byte order, unaligned access allowed.
 */
public final class Elements {
  private Elements() {}

  private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;
  private static final ValueLayout.OfDouble F64 = ValueLayout.JAVA_DOUBLE_UNALIGNED;
  private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED;
  private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED;
  private static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED;

  public static double get(MemorySegment s, DType t, long byteOffset) {
    return switch (t) {
      case F32 -> s.get(F32, byteOffset);
      case F64 -> s.get(F64, byteOffset);
      case BF16 -> HalfFloats.fromBf16(s.get(I16, byteOffset));
      case F16 -> HalfFloats.fromF16(s.get(I16, byteOffset));
      case I32 -> s.get(I32, byteOffset);
      case I64 -> s.get(I64, byteOffset);
      case BOOL -> s.get(ValueLayout.JAVA_BYTE, byteOffset) != 0 ? 1.0 : 0.0;
    };
  }

  /** Writes {@code v} converted to {@code t}: floats round to nearest even, integers truncate toward zero, bool is v != 0. */
  public static void set(MemorySegment s, DType t, long byteOffset, double v) {
    switch (t) {
      case F32 -> s.set(F32, byteOffset, (float) v);
      case F64 -> s.set(F64, byteOffset, v);
      case BF16 -> s.set(I16, byteOffset, HalfFloats.toBf16((float) v));
      case F16 -> s.set(I16, byteOffset, HalfFloats.toF16((float) v));
      case I32 -> s.set(I32, byteOffset, (int) v);
      case I64 -> s.set(I64, byteOffset, (long) v);
      case BOOL -> s.set(ValueLayout.JAVA_BYTE, byteOffset, (byte) (v != 0 ? 1 : 0));
    }
  }

  /** Exact for i64 values beyond 2^53, which {@link #get} would round. */
  public static long getLong(MemorySegment s, DType t, long byteOffset) {
    return switch (t) {
      case I64 -> s.get(I64, byteOffset);
      case I32 -> s.get(I32, byteOffset);
      default -> (long) get(s, t, byteOffset);
    };
  }

  public static void setLong(MemorySegment s, DType t, long byteOffset, long v) {
    switch (t) {
      case I64 -> s.set(I64, byteOffset, v);
      case I32 -> s.set(I32, byteOffset, (int) v);
      default -> set(s, t, byteOffset, v);
    }
  }
}
