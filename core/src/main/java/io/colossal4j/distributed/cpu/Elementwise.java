package io.colossal4j.distributed.cpu;

import io.colossal4j.backend.BinaryOp;
import io.colossal4j.backend.cpu.simd.SegmentF32;
import io.colossal4j.distributed.Reduction;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Elements;
import java.lang.foreign.MemorySegment;

/**
 * The element loops of the collectives, on raw memory (tensor storage, received payloads, shared memory).
 * f32 runs through the Vector API loops of {@link SegmentF32}; the other dtypes go through doubles
 * (exact for every value of f64, bf16, f16, i32) or longs (i64). bf16/f16 round after every combination,
 * as NCCL does, so a sum over n ranks carries up to n-1 roundings.
 */
final class Elementwise {
  private Elementwise() {}

  /** acc[i] = op(acc[i], src[i]) for n elements; AVG accumulates as SUM (the division comes last). */
  static void accumulate(Reduction op, DType dt, MemorySegment acc, long accOff, MemorySegment src, long srcOff, long n) {
    if (dt == DType.F32) {
      SegmentF32.combine(binary(op), acc, accOff, src, srcOff, acc, accOff, n);
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

  /**
   * out[i] = op(a[i], b[i]) for n elements (AVG as SUM). out may be a itself; otherwise it must not overlap
   * a or b. Same rounding as {@link #accumulate} on a copy of a.
   */
  static void combine(Reduction op, DType dt, MemorySegment a, long aOff, MemorySegment b, long bOff, MemorySegment out, long outOff, long n) {
    if (dt == DType.F32) {
      SegmentF32.combine(binary(op), a, aOff, b, bOff, out, outOff, n);
      return;
    }
    if (out != a || outOff != aOff) MemorySegment.copy(a, aOff, out, outOff, n * dt.byteSize());
    accumulate(op, dt, out, outOff, b, bOff, n);
  }

  /**
   * a[i] = b[i] = op(a[i], b[i]), divided by 2 for AVG (the whole reduction of two members' copies, written
   * into both; a and b do not overlap): bit-identical to {@link #combine}, {@link #divide} and a copy, in one
   * pass for f32.
   */
  static void combineIntoBoth(Reduction op, DType dt, MemorySegment a, long aOff, MemorySegment b, long bOff, long n) {
    if (dt == DType.F32) {
      SegmentF32.combineIntoBoth(binary(op), a, aOff, b, bOff, n, op == Reduction.AVG ? 2f : 1f);
      return;
    }
    combine(op, dt, a, aOff, b, bOff, a, aOff, n);
    if (op == Reduction.AVG) divide(dt, a, aOff, n, 2);
    MemorySegment.copy(a, aOff, b, bOff, n * dt.byteSize());
  }

  /** acc[i] = op(acc[i], src[i]), then copy[i] = acc[i] (the last step of a member's chunk in {@link ShmSegmentAllReduce}). */
  static void accumulateAndCopy(Reduction op, DType dt, MemorySegment acc, long accOff, MemorySegment src, long srcOff,
      MemorySegment copy, long copyOff, long n) {
    accumulate(op, dt, acc, accOff, src, srcOff, n);
    MemorySegment.copy(acc, accOff, copy, copyOff, n * dt.byteSize());
  }

  private static BinaryOp binary(Reduction op) {
    return switch (op) {
      case SUM, AVG -> BinaryOp.ADD;
      case MAX -> BinaryOp.MAX;
      case MIN -> BinaryOp.MIN;
    };
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
      SegmentF32.divide(x, off, n, divisor);
      return;
    }
    for (long i = 0; i < n; i++) Elements.set(x, dt, off + i * es, Elements.get(x, dt, off + i * es) / divisor);
  }
}
