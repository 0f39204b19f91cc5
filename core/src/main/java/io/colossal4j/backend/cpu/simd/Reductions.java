package io.colossal4j.backend.cpu.simd;

import static io.colossal4j.backend.cpu.CpuBackend.segment;
import static io.colossal4j.backend.cpu.simd.RowOps.F;
import static io.colossal4j.backend.cpu.simd.RowOps.L;
import static io.colossal4j.backend.cpu.simd.RowOps.load;
import static io.colossal4j.backend.cpu.simd.VMath.S;

import io.colossal4j.backend.ReduceOp;
import io.colossal4j.backend.cpu.CpuParallel;
import io.colossal4j.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

/**
 * SUM, MEAN, MAX, MIN of a contiguous f32 tensor viewed as [outer, inner] into a contiguous output, over
 * either the trailing dims (each output is a horizontal reduction of one unit-stride row of length inner)
 * or the leading dims (out[j] = reduce_i x[i, j], vectorised across j). Sums accumulate in f32 vector
 * lanes (four independent accumulators for trailing rows), so the error grows like length·2^-24 in the
 * worst case; MAX/MIN propagate NaN as the reference does.
 */
final class Reductions {
  private Reductions() {}

  static boolean supports(ReduceOp op) {
    return op == ReduceOp.SUM || op == ReduceOp.MEAN || op == ReduceOp.MAX || op == ReduceOp.MIN;
  }

  private static float identity(ReduceOp op) {
    return switch (op) {
      case MAX -> Float.NEGATIVE_INFINITY;
      case MIN -> Float.POSITIVE_INFINITY;
      default -> 0f;
    };
  }

  /** Reduces each of {@code outer} rows of length {@code inner}. */
  static void trailing(CpuParallel par, ReduceOp op, Tensor x, long outer, int inner, Tensor out) {
    MemorySegment sx = segment(x), so = segment(out);
    float id = identity(op);
    float scale = op == ReduceOp.MEAN ? 1f / inner : 1f;
    par.forRange(outer, RowOps.grain(inner), (r0, r1) -> {
      for (long r = r0; r < r1; r++) so.setAtIndex(F, out.offset() + r, row(op, sx, x.offset() + r * inner, inner, id) * scale);
    });
  }

  /**
   * One row, in its own method so the JIT compiles it as a plain hot method (not by on-stack replacement). One loop
   * per op, each calling the vector op directly: a helper taking vectors as arguments (a switch on the op) was left
   * out of line by the JIT in a long run and boxed every vector it was passed (about 600 bytes of garbage per 64
   * elements, and the fallback's speed), as found with JFR's allocation samples in a convolution's training step.
   */
  private static float row(ReduceOp op, MemorySegment sx, long xo, int inner, float id) {
    return switch (op) {
      case MAX -> rowMax(sx, xo, inner, id);
      case MIN -> rowMin(sx, xo, inner, id);
      default -> rowSum(sx, xo, inner, id);
    };
  }

  private static float rowSum(MemorySegment sx, long xo, int inner, float id) {
    FloatVector a0 = FloatVector.broadcast(S, id), a1 = a0, a2 = a0, a3 = a0;
    int j = 0;
    for (; j + 4 * L <= inner; j += 4 * L) {
      a0 = a0.add(FloatVector.fromMemorySegment(S, sx, (xo + j) * 4, RowOps.NATIVE));
      a1 = a1.add(FloatVector.fromMemorySegment(S, sx, (xo + j + L) * 4, RowOps.NATIVE));
      a2 = a2.add(FloatVector.fromMemorySegment(S, sx, (xo + j + 2 * L) * 4, RowOps.NATIVE));
      a3 = a3.add(FloatVector.fromMemorySegment(S, sx, (xo + j + 3 * L) * 4, RowOps.NATIVE));
    }
    for (; j < inner; j += L) a0 = a0.add(load(sx, xo, j, inner).blend(id, S.indexInRange(j, inner).not()));
    FloatVector a = a0.add(a1).add(a2.add(a3));
    float sum = 0;
    for (int l = 0; l < L; l++) sum += a.lane(l);   // left to right as VMath.sumLanes, without its array per row
    return sum;
  }

  private static float rowMax(MemorySegment sx, long xo, int inner, float id) {
    FloatVector a0 = FloatVector.broadcast(S, id), a1 = a0, a2 = a0, a3 = a0;
    int j = 0;
    for (; j + 4 * L <= inner; j += 4 * L) {
      a0 = a0.max(FloatVector.fromMemorySegment(S, sx, (xo + j) * 4, RowOps.NATIVE));
      a1 = a1.max(FloatVector.fromMemorySegment(S, sx, (xo + j + L) * 4, RowOps.NATIVE));
      a2 = a2.max(FloatVector.fromMemorySegment(S, sx, (xo + j + 2 * L) * 4, RowOps.NATIVE));
      a3 = a3.max(FloatVector.fromMemorySegment(S, sx, (xo + j + 3 * L) * 4, RowOps.NATIVE));
    }
    for (; j < inner; j += L) a0 = a0.max(load(sx, xo, j, inner).blend(id, S.indexInRange(j, inner).not()));
    return a0.max(a1).max(a2.max(a3)).reduceLanes(VectorOperators.MAX);
  }

  private static float rowMin(MemorySegment sx, long xo, int inner, float id) {
    FloatVector a0 = FloatVector.broadcast(S, id), a1 = a0, a2 = a0, a3 = a0;
    int j = 0;
    for (; j + 4 * L <= inner; j += 4 * L) {
      a0 = a0.min(FloatVector.fromMemorySegment(S, sx, (xo + j) * 4, RowOps.NATIVE));
      a1 = a1.min(FloatVector.fromMemorySegment(S, sx, (xo + j + L) * 4, RowOps.NATIVE));
      a2 = a2.min(FloatVector.fromMemorySegment(S, sx, (xo + j + 2 * L) * 4, RowOps.NATIVE));
      a3 = a3.min(FloatVector.fromMemorySegment(S, sx, (xo + j + 3 * L) * 4, RowOps.NATIVE));
    }
    for (; j < inner; j += L) a0 = a0.min(load(sx, xo, j, inner).blend(id, S.indexInRange(j, inner).not()));
    return a0.min(a1).min(a2.min(a3)).reduceLanes(VectorOperators.MIN);
  }

  /** out[j] = reduce over i of x[i, j], for a contiguous x viewed as [outer, inner]. Split over j. */
  static void leading(CpuParallel par, ReduceOp op, Tensor x, long outer, int inner, Tensor out) {
    MemorySegment sx = segment(x), so = segment(out);
    float id = identity(op);
    float scale = op == ReduceOp.MEAN ? 1f / outer : 1f;
    long blocks = (inner + 4L * L - 1) / (4L * L);
    par.forRange(blocks, Math.max(1, (1 << 14) / Math.max(1, outer * 4 * L)), (b0, b1) -> {
      for (long blk = b0; blk < b1; blk++) {
        int j0 = (int) blk * 4 * L, j1 = Math.min(inner, j0 + 4 * L);
        for (int j = j0; j < j1; j += L) {
          FloatVector acc = FloatVector.broadcast(S, id);
          long base = x.offset();
          switch (op) {   // one loop per op: no helper taking vectors (see row)
            case MAX -> { for (long i = 0; i < outer; i++) acc = acc.max(load(sx, base + i * inner, j, j1)); }
            case MIN -> { for (long i = 0; i < outer; i++) acc = acc.min(load(sx, base + i * inner, j, j1)); }
            default -> { for (long i = 0; i < outer; i++) acc = acc.add(load(sx, base + i * inner, j, j1)); }
          }
          RowOps.store(acc.mul(scale), so, out.offset(), j, j1);
        }
      }
    });
  }

  /**
   * out[k] = reduce over o and i of x[o, k, i], for a contiguous x viewed as [outer, keep, inner]: the
   * reduction over a leading and a trailing run of dims that batch norm needs (N and H, W of NCHW). Each
   * output sums the vector row reductions of its {@code outer} rows in turn; split over k.
   */
  static void outerAndInner(CpuParallel par, ReduceOp op, Tensor x, long outer, int keep, int inner, Tensor out) {
    MemorySegment sx = segment(x), so = segment(out);
    float id = identity(op);
    float scale = op == ReduceOp.MEAN ? (float) (1.0 / ((double) outer * inner)) : 1f;
    par.forRange(keep, Math.max(1, (1L << 14) / Math.max(1, outer * inner)), (k0, k1) -> {
      for (long k = k0; k < k1; k++) {
        float acc = id;
        for (long o = 0; o < outer; o++) {
          float r = row(op, sx, x.offset() + (o * keep + k) * inner, inner, id);
          acc = switch (op) {
            case MAX -> Math.max(acc, r);
            case MIN -> Math.min(acc, r);
            default -> acc + r;
          };
        }
        so.setAtIndex(F, out.offset() + k, acc * scale);
      }
    });
  }
}
