package io.colossal4j.distributed.cpu;

import io.colossal4j.distributed.Reduction;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Elements;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The element loops of the collectives, on raw memory (tensor storage, received payloads, shared memory).
 * f32 has dedicated loops simple enough for the JIT to vectorise; the other dtypes go through doubles
 * (exact for every value of f64, bf16, f16, i32) or longs (i64). bf16/f16 round after every combination,
 * as NCCL does, so a sum over n ranks carries up to n-1 roundings.
 */
final class Elementwise {
  private Elementwise() {}

  private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;

  /** acc[i] = op(acc[i], src[i]) for n elements; AVG accumulates as SUM (the division comes last). */
  static void accumulate(Reduction op, DType dt, MemorySegment acc, long accOff, MemorySegment src, long srcOff, long n) {
    if (dt == DType.F32) {
      accumulateF32(op, acc, accOff, src, srcOff, n);
      return;
    }
    int es = dt.byteSize();
    boolean exactLong = dt == DType.I64;
    for (long i = 0; i < n; i++) {
      long a = accOff + i * es, s = srcOff + i * es;
      if (exactLong) {
        long x = Elements.getLong(acc, dt, a), y = Elements.getLong(src, dt, s);
        Elements.setLong(acc, dt, a, switch (op) {
          case SUM, AVG -> x + y;
          case MAX -> Math.max(x, y);
          case MIN -> Math.min(x, y);
        });
      } else {
        double x = Elements.get(acc, dt, a), y = Elements.get(src, dt, s);
        double r = switch (op) {
          case SUM, AVG -> dt == DType.I32 ? (double) ((int) x + (int) y) : x + y;
          case MAX -> Math.max(x, y);
          case MIN -> Math.min(x, y);
        };
        Elements.set(acc, dt, a, r);
      }
    }
  }

  private static void accumulateF32(Reduction op, MemorySegment acc, long accOff, MemorySegment src, long srcOff, long n) {
    switch (op) {
      case SUM, AVG -> {
        for (long i = 0; i < n; i++) {
          long a = accOff + (i << 2);
          acc.set(F, a, acc.get(F, a) + src.get(F, srcOff + (i << 2)));
        }
      }
      case MAX -> {
        for (long i = 0; i < n; i++) {
          long a = accOff + (i << 2);
          acc.set(F, a, Math.max(acc.get(F, a), src.get(F, srcOff + (i << 2))));
        }
      }
      case MIN -> {
        for (long i = 0; i < n; i++) {
          long a = accOff + (i << 2);
          acc.set(F, a, Math.min(acc.get(F, a), src.get(F, srcOff + (i << 2))));
        }
      }
    }
  }

  /**
   * acc[i] = op(acc[i], src[i]) and copy[i] = the result, in one pass (the last step of the shared-memory
   * reduction, which saves re-reading acc to publish the result).
   */
  static void accumulateAndCopy(Reduction op, DType dt, MemorySegment acc, long accOff, MemorySegment src, long srcOff,
      MemorySegment copy, long copyOff, long n) {
    if (dt != DType.F32 || op == Reduction.MAX || op == Reduction.MIN) {
      accumulate(op, dt, acc, accOff, src, srcOff, n);
      MemorySegment.copy(acc, accOff, copy, copyOff, n * dt.byteSize());
      return;
    }
    for (long i = 0; i < n; i++) {
      float v = acc.get(F, accOff + (i << 2)) + src.get(F, srcOff + (i << 2));
      acc.set(F, accOff + (i << 2), v);
      copy.set(F, copyOff + (i << 2), v);
    }
  }

  /**
   * Scratch or receive memory, off-heap and GC-tracked (so there is no pool to leak from). Always native:
   * if the element loops above also saw heap segments, their JIT profiles would turn polymorphic and the
   * compiled loops would lose their vectorisation (measured: 4-rank all-reduce 10x slower).
   */
  static MemorySegment buffer(long bytes) {
    return bytes == 0 ? MemorySegment.NULL : java.lang.foreign.Arena.ofAuto().allocate(bytes, 64);
  }

  /** x[i] /= divisor for a floating dtype (the last step of AVG). */
  static void divide(DType dt, MemorySegment x, long off, long n, int divisor) {
    int es = dt.byteSize();
    if (dt == DType.F32) {
      for (long i = 0; i < n; i++) x.set(F, off + (i << 2), x.get(F, off + (i << 2)) / divisor);
      return;
    }
    for (long i = 0; i < n; i++) Elements.set(x, dt, off + i * es, Elements.get(x, dt, off + i * es) / divisor);
  }
}
