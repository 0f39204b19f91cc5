package io.colossal4j.backend.cpu.simd;

import static io.colossal4j.backend.cpu.CpuBackend.segment;
import static io.colossal4j.backend.cpu.simd.RowOps.F;
import static io.colossal4j.backend.cpu.simd.RowOps.L;
import static io.colossal4j.backend.cpu.simd.RowOps.NATIVE;
import static io.colossal4j.backend.cpu.simd.RowOps.SWAP1;
import static io.colossal4j.backend.cpu.simd.RowOps.SWAP2;
import static io.colossal4j.backend.cpu.simd.RowOps.SWAP4;
import static io.colossal4j.backend.cpu.simd.RowOps.SWAP8;
import static io.colossal4j.backend.cpu.simd.VMath.S;

import io.colossal4j.backend.cpu.CpuParallel;
import io.colossal4j.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;

/**
 * Layer norm over the last dim of a contiguous f32 x viewed as [rows, n], and its backward. w, b, mean and rstd
 * must have unit stride (the caller checks). Backward: per row gx = rstd·(g·w − mean(g·w) − x̂·mean(g·w·x̂)) (see
 * {@link LayerNormBackward}).
 *
 * <p>Forward, per row: a pass that only loads and adds, which streams the row from memory into L1 (a 1024-float
 * row is 4 KiB), then the centred sums and y from L1 ({@link #statistics}, {@link #normaliseRow}).
 * Measured in one JVM against the previous kernel (4096 × 1024, alternating rounds, 10th-percentile wall time):
 * on two threads 1.0–1.7 against 1.5–1.9 ms a call. What was tried and dropped (docs/benchmarks/cpu.md): one pass
 * of shifted sums for mean and variance (fewer instructions in all, but more per load in the pass that streams
 * from memory, so fewer loads in flight: slower from memory), y for blocks of four rows with one load of w and b
 * for all four (faster with the rows in L1, slower from memory), and the affine loop unrolled four times inline
 * (past the JIT's inlining budget: its vectors were boxed, 50× slower).
 *
 * <p>Rows are processed in chunks of consecutive rows ({@link RowOps#forChunksOfRows}); every row's arithmetic
 * is independent of the chunking, so results do not depend on the thread count.
 */
final class LayerNormKernel {
  private LayerNormKernel() {}

  /** The segments and element offsets of one forward call; w and b may be null. */
  private record Operands(MemorySegment x, long xo, MemorySegment w, long wo, MemorySegment b, long bo, MemorySegment y, long yo,
                          MemorySegment mean, long mo, MemorySegment rstd, long ro, int n, float eps) {
    /** Rows [r0, r1), one at a time: its statistics, then y while the row is in L1. */
    void rows(long r0, long r1) {
      for (long r = r0; r < r1; r++) {
        statistics(this, r);
        normaliseRow(this, r);
      }
    }
  }

  static void forward(CpuParallel par, Tensor x, Tensor w, Tensor b, float eps, Tensor y, Tensor mean, Tensor rstd) {
    int n = x.size(-1);
    long rows = x.numel() / Math.max(1, n);
    Operands op = new Operands(segment(x), x.offset(), w == null ? null : segment(w), w == null ? 0 : w.offset(),
        b == null ? null : segment(b), b == null ? 0 : b.offset(), segment(y), y.offset(), segment(mean), mean.offset(),
        segment(rstd), rstd.offset(), n, eps);
    RowOps.forRowChunks(par, rows, n, op::rows);
  }

  /**
   * Writes mean and rstd of row r. A first pass only loads and adds (it streams the row from memory, so the
   * fewer instructions per load the more loads in flight) for m = Σx/n in f32; a second, from L1, sums d = x − m
   * and d². Then mean = m + Σd/n and var = Σd²/n − (Σd/n)²: the corrected two-pass form, whose subtraction
   * cancels nothing (Σd/n is m's rounding error), so neither |mean| ≫ std (where E[x²] − E[x]² would lose every
   * digit) nor that rounding error (which plain Σ(x − m)² counts as spread) costs accuracy.
   */
  private static void statistics(Operands op, long r) {
    int n = op.n;
    long xo = op.xo + r * n;
    float m = rowSum(op.x, xo, n) / n;
    long sums = centredSums(op.x, xo, n, m);
    double d = high(sums) / (double) n, var = low(sums) / (double) n - d * d;
    op.mean.setAtIndex(F, op.mo + r, (float) (m + d));
    op.rstd.setAtIndex(F, op.ro + r, (float) (1 / Math.sqrt(Math.max(0, var) + op.eps)));
  }

  /*
   * The passes over a row, each its own small method so that the JIT compiles each as an ordinary hot method
   * with every vector in a register (a lambda's loop would be compiled by on-stack replacement, and one big
   * method exceeds the inlining budget, which boxes vectors). Main loops go four vectors at a time, unmasked
   * (the loop overhead of one vector per iteration was measurable); the rest of the row's whole vectors go one
   * at a time into the first accumulator, and its last partial vector in scalars after the lane sum (written
   * out, see RowOps#SWAP8). Four accumulators because one would serialise a pass on the add latency.
   */

  /** Σ x over one row. */
  static float rowSum(MemorySegment x, long xo, int n) {
    FloatVector a0 = FloatVector.zero(S), a1 = a0, a2 = a0, a3 = a0;
    int j = 0;
    for (; j + 4 * L <= n; j += 4 * L) {
      long o = (xo + j) * 4;
      a0 = a0.add(FloatVector.fromMemorySegment(S, x, o, NATIVE));
      a1 = a1.add(FloatVector.fromMemorySegment(S, x, o + 4L * L, NATIVE));
      a2 = a2.add(FloatVector.fromMemorySegment(S, x, o + 8L * L, NATIVE));
      a3 = a3.add(FloatVector.fromMemorySegment(S, x, o + 12L * L, NATIVE));
    }
    for (; j + L <= n; j += L) a0 = a0.add(FloatVector.fromMemorySegment(S, x, (xo + j) * 4, NATIVE));
    a0 = a0.add(a1).add(a2.add(a3));
    if (L > 8) a0 = a0.add(a0.rearrange(SWAP8));
    if (L > 4) a0 = a0.add(a0.rearrange(SWAP4));
    if (L > 2) a0 = a0.add(a0.rearrange(SWAP2));
    if (L > 1) a0 = a0.add(a0.rearrange(SWAP1));
    float s = a0.lane(0);
    for (; j < n; j++) s += x.getAtIndex(F, xo + j);
    return s;
  }

  /** Σ (x − m) and Σ (x − m)² over one row, packed as {@link #high} and {@link #low}. */
  static long centredSums(MemorySegment x, long xo, int n, float m) {
    FloatVector s0 = FloatVector.zero(S), s1 = s0, s2 = s0, s3 = s0, q0 = s0, q1 = s0, q2 = s0, q3 = s0;
    int j = 0;
    for (; j + 4 * L <= n; j += 4 * L) {
      long o = (xo + j) * 4;
      FloatVector d0 = FloatVector.fromMemorySegment(S, x, o, NATIVE).sub(m);
      FloatVector d1 = FloatVector.fromMemorySegment(S, x, o + 4L * L, NATIVE).sub(m);
      FloatVector d2 = FloatVector.fromMemorySegment(S, x, o + 8L * L, NATIVE).sub(m);
      FloatVector d3 = FloatVector.fromMemorySegment(S, x, o + 12L * L, NATIVE).sub(m);
      s0 = s0.add(d0);
      s1 = s1.add(d1);
      s2 = s2.add(d2);
      s3 = s3.add(d3);
      q0 = d0.fma(d0, q0);
      q1 = d1.fma(d1, q1);
      q2 = d2.fma(d2, q2);
      q3 = d3.fma(d3, q3);
    }
    for (; j + L <= n; j += L) {
      FloatVector d = FloatVector.fromMemorySegment(S, x, (xo + j) * 4, NATIVE).sub(m);
      s0 = s0.add(d);
      q0 = d.fma(d, q0);
    }
    FloatVector sv = s0.add(s1).add(s2.add(s3)), qv = q0.add(q1).add(q2.add(q3));
    if (L > 8) { sv = sv.add(sv.rearrange(SWAP8)); qv = qv.add(qv.rearrange(SWAP8)); }
    if (L > 4) { sv = sv.add(sv.rearrange(SWAP4)); qv = qv.add(qv.rearrange(SWAP4)); }
    if (L > 2) { sv = sv.add(sv.rearrange(SWAP2)); qv = qv.add(qv.rearrange(SWAP2)); }
    if (L > 1) { sv = sv.add(sv.rearrange(SWAP1)); qv = qv.add(qv.rearrange(SWAP1)); }
    float s = sv.lane(0), q = qv.lane(0);
    for (; j < n; j++) { // the last partial vector in scalars
      float d = x.getAtIndex(F, xo + j) - m;
      s += d;
      q += d * d;
    }
    return pack(s, q);
  }

  /**
   * y = ((x − mu)·rs)·w + b over row r (w, b may be null; multiply, then add: the rounding of every path): whole
   * vectors first when w and b are both present or both absent, then one vector at a time with the masked tail.
   */
  private static void normaliseRow(Operands op, long r) {
    int n = op.n, j = 0;
    float mu = op.mean.getAtIndex(F, op.mo + r), rs = op.rstd.getAtIndex(F, op.ro + r);
    MemorySegment x = op.x, w = op.w, b = op.b, y = op.y;
    long xo = op.xo + r * n, yo = op.yo + r * n;
    if (w != null && b != null)
      for (; j + L <= n; j += L)
        FloatVector.fromMemorySegment(S, x, (xo + j) * 4, NATIVE).sub(mu).mul(rs).mul(FloatVector.fromMemorySegment(S, w, (op.wo + j) * 4, NATIVE))
            .add(FloatVector.fromMemorySegment(S, b, (op.bo + j) * 4, NATIVE)).intoMemorySegment(y, (yo + j) * 4, NATIVE);
    else if (w == null && b == null)
      for (; j + L <= n; j += L) FloatVector.fromMemorySegment(S, x, (xo + j) * 4, NATIVE).sub(mu).mul(rs).intoMemorySegment(y, (yo + j) * 4, NATIVE);
    for (; j < n; j += L) { // masked accesses written out: a helper returning a vector may be left out of line, and box it
      VectorMask<Float> m = S.indexInRange(j, n);
      FloatVector v = FloatVector.fromMemorySegment(S, x, (xo + j) * 4, NATIVE, m).sub(mu).mul(rs);
      if (w != null) v = v.mul(FloatVector.fromMemorySegment(S, w, (op.wo + j) * 4, NATIVE, m));
      if (b != null) v = v.add(FloatVector.fromMemorySegment(S, b, (op.bo + j) * 4, NATIVE, m));
      v.intoMemorySegment(y, (yo + j) * 4, NATIVE, m);
    }
  }

  private static long pack(float hi, float lo) { return (long) Float.floatToRawIntBits(hi) << 32 | (Float.floatToRawIntBits(lo) & 0xffffffffL); }

  private static float high(long v) { return Float.intBitsToFloat((int) (v >>> 32)); }

  private static float low(long v) { return Float.intBitsToFloat((int) v); }

  static void backward(CpuParallel par, ScratchPool scratch, Tensor gy, Tensor x, Tensor w, Tensor mean, Tensor rstd, Tensor gx, Tensor gw, Tensor gb) {
    LayerNormBackward.run(par, scratch, gy, x, w, mean, rstd, gx, gw, gb);
  }
}
