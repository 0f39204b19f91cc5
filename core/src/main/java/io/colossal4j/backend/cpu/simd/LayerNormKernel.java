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
 * <p>Forward, per block of {@link #BLOCK} consecutive rows: the statistics of each row in one pass over it
 * ({@link #statistics}), which brings the block into L1 (4 rows of 1024 floats are 16 KiB), then y for the
 * whole block in one pass that loads each vector of w and b once for all its rows. Every vector load or store
 * costs about 0.4 ns here whatever it does (one-thread microbenchmark, rows in L1), so the kernel is built to
 * make few: 1 + 1 + 1 + 2/BLOCK per vector of y, against 6 for the two-pass statistics and a row-at-a-time
 * affine step before (whose 4-vector step, a separate method, was also too big to inline). Rows left over at
 * the end of a chunk, and the rare w-without-b or b-without-w case, go a row at a time.
 *
 * <p>Rows are processed in chunks of consecutive rows ({@link RowOps#forChunksOfRows}); every row's arithmetic
 * is independent of the chunking, so results do not depend on the thread count.
 */
final class LayerNormKernel {
  private LayerNormKernel() {}

  /** Rows normalised together: each vector of w and b is loaded once per block. */
  static final int BLOCK = 4;

  /** The segments and element offsets of one forward call; w and b may be null. */
  private record Operands(MemorySegment x, long xo, MemorySegment w, long wo, MemorySegment b, long bo, MemorySegment y, long yo,
                          MemorySegment mean, long mo, MemorySegment rstd, long ro, int n, float eps) {
    /** Rows [r0, r1): whole blocks, then the rest a row at a time. */
    void rows(long r0, long r1) {
      long r = r0;
      if ((w == null) == (b == null))
        for (; r + BLOCK <= r1; r += BLOCK) {
          for (int i = 0; i < BLOCK; i++) statistics(this, r + i);
          if (w != null) affineBlock(x, (xo + r * n) * 4, w, wo * 4, b, bo * 4, y, (yo + r * n) * 4, mean, (mo + r) * 4, rstd, (ro + r) * 4, n);
          else plainBlock(x, (xo + r * n) * 4, y, (yo + r * n) * 4, mean, (mo + r) * 4, rstd, (ro + r) * 4, n);
          if (n % L != 0) for (int i = 0; i < BLOCK; i++) normaliseRow(this, r + i, n - n % L);
        }
      for (; r < r1; r++) {
        statistics(this, r);
        normaliseRow(this, r, 0);
      }
    }

  }

  static void forward(CpuParallel par, Tensor x, Tensor w, Tensor b, float eps, Tensor y, Tensor mean, Tensor rstd) {
    int n = x.size(-1);
    long rows = x.numel() / Math.max(1, n);
    Operands op = new Operands(segment(x), x.offset(), w == null ? null : segment(w), w == null ? 0 : w.offset(),
        b == null ? null : segment(b), b == null ? 0 : b.offset(), segment(y), y.offset(), segment(mean), mean.offset(),
        segment(rstd), rstd.offset(), n, eps);
    long chunk = Math.max(1, (1 << 14) / Math.max(1, n)); // about 64 KiB of x, as the other row kernels
    if (chunk >= BLOCK) chunk = (chunk + BLOCK - 1) / BLOCK * BLOCK; // whole blocks: no row goes the slow way
    RowOps.forChunksOfRows(par, rows, chunk, op::rows);
  }

  /**
   * Writes mean and rstd of row r. One pass of shifted sums: with k the mean of the row's first L elements (all
   * of them when the row is shorter), d = x − k, the lanes sum d and d²; then mean = k + Σd/n and
   * var = Σd²/n − (Σd/n)². The subtraction cancels the bits that (mean − k)² takes of Σd²/n, so when that is
   * more than half of it (k far from the mean relative to the spread, as in a row that trends or whose first
   * elements are outliers) the centred Σ(x − mean)² is taken in a second pass, over the row now in L1. So at
   * most one bit is lost against the two-pass form, whatever |mean| is; on rows of independent values k is
   * within about std/4 of the mean and the second pass never runs.
   */
  private static void statistics(Operands op, long r) {
    int n = op.n;
    long xo = op.xo + r * n;
    float k = 0;
    for (int j = 0; j < Math.min(n, L); j++) k += op.x.getAtIndex(F, xo + j);
    k /= Math.min(n, L);
    long sums = shiftedSums(op.x, xo, n, k);
    double d = high(sums) / (double) n, sq = low(sums) / (double) n;
    float mu = (float) (k + d);
    double var = 2 * d * d > sq ? centredSquares(op.x, xo, n, mu) / (double) n : sq - d * d;
    op.mean.setAtIndex(F, op.mo + r, mu);
    op.rstd.setAtIndex(F, op.ro + r, (float) (1 / Math.sqrt(var + op.eps)));
  }

  /*
   * The passes over a row, each its own small method so that the JIT compiles each as an ordinary hot method
   * with every vector in a register (a lambda's loop would be compiled by on-stack replacement, and one big
   * method exceeds the inlining budget, which boxes vectors). Main loops go four vectors at a time, unmasked
   * (the loop overhead of one vector per iteration was measurable); the rest of the row's whole vectors go one
   * at a time into the first accumulator, and its last partial vector in scalars after the lane sum (written
   * out, see RowOps#SWAP8). Four accumulators because one would serialise a pass on the add latency.
   */

  /** Σ (x − k) and Σ (x − k)² over one row, packed as {@link #high} and {@link #low}. */
  static long shiftedSums(MemorySegment x, long xo, int n, float k) {
    FloatVector s0 = FloatVector.zero(S), s1 = s0, s2 = s0, s3 = s0, q0 = s0, q1 = s0, q2 = s0, q3 = s0;
    int j = 0;
    for (; j + 4 * L <= n; j += 4 * L) {
      long o = (xo + j) * 4;
      FloatVector d0 = FloatVector.fromMemorySegment(S, x, o, NATIVE).sub(k);
      FloatVector d1 = FloatVector.fromMemorySegment(S, x, o + 4L * L, NATIVE).sub(k);
      FloatVector d2 = FloatVector.fromMemorySegment(S, x, o + 8L * L, NATIVE).sub(k);
      FloatVector d3 = FloatVector.fromMemorySegment(S, x, o + 12L * L, NATIVE).sub(k);
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
      FloatVector d = FloatVector.fromMemorySegment(S, x, (xo + j) * 4, NATIVE).sub(k);
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
      float d = x.getAtIndex(F, xo + j) - k;
      s += d;
      q += d * d;
    }
    return pack(s, q);
  }

  /** Σ (x − mu)² over one row: no cancellation however far the shift of {@link #shiftedSums} was. */
  static float centredSquares(MemorySegment x, long xo, int n, float mu) {
    FloatVector a0 = FloatVector.zero(S), a1 = a0, a2 = a0, a3 = a0;
    int j = 0;
    for (; j + 4 * L <= n; j += 4 * L) {
      long o = (xo + j) * 4;
      FloatVector d0 = FloatVector.fromMemorySegment(S, x, o, NATIVE).sub(mu);
      FloatVector d1 = FloatVector.fromMemorySegment(S, x, o + 4L * L, NATIVE).sub(mu);
      FloatVector d2 = FloatVector.fromMemorySegment(S, x, o + 8L * L, NATIVE).sub(mu);
      FloatVector d3 = FloatVector.fromMemorySegment(S, x, o + 12L * L, NATIVE).sub(mu);
      a0 = d0.fma(d0, a0);
      a1 = d1.fma(d1, a1);
      a2 = d2.fma(d2, a2);
      a3 = d3.fma(d3, a3);
    }
    for (; j + L <= n; j += L) {
      FloatVector d = FloatVector.fromMemorySegment(S, x, (xo + j) * 4, NATIVE).sub(mu);
      a0 = d.fma(d, a0);
    }
    a0 = a0.add(a1).add(a2.add(a3));
    if (L > 8) a0 = a0.add(a0.rearrange(SWAP8));
    if (L > 4) a0 = a0.add(a0.rearrange(SWAP4));
    if (L > 2) a0 = a0.add(a0.rearrange(SWAP2));
    if (L > 1) a0 = a0.add(a0.rearrange(SWAP1));
    float q = a0.lane(0);
    for (; j < n; j++) {
      float d = x.getAtIndex(F, xo + j) - mu;
      q += d * d;
    }
    return q;
  }

  /**
   * y = ((x − mu)·rs)·w + b over the whole vectors of a block of four rows at byte offsets xb, yb (w, b at wb, bb;
   * the rows' mean and rstd at mb, rb): one load of w and b per vector for the four rows. Multiply, then add: the rounding of every path.
   */
  private static void affineBlock(MemorySegment x, long xb, MemorySegment w, long wb, MemorySegment b, long bb, MemorySegment y, long yb,
                                  MemorySegment mean, long mb, MemorySegment rstd, long rb, int n) {
    long row = n * 4L;
    float m0 = mean.get(F, mb), m1 = mean.get(F, mb + 4), m2 = mean.get(F, mb + 8), m3 = mean.get(F, mb + 12);
    float r0 = rstd.get(F, rb), r1 = rstd.get(F, rb + 4), r2 = rstd.get(F, rb + 8), r3 = rstd.get(F, rb + 12);
    for (int j = 0; j + L <= n; j += L) {
      long o = j * 4L;
      FloatVector wv = FloatVector.fromMemorySegment(S, w, wb + o, NATIVE), bv = FloatVector.fromMemorySegment(S, b, bb + o, NATIVE);
      FloatVector.fromMemorySegment(S, x, xb + o, NATIVE).sub(m0).mul(r0).mul(wv).add(bv).intoMemorySegment(y, yb + o, NATIVE);
      FloatVector.fromMemorySegment(S, x, xb + row + o, NATIVE).sub(m1).mul(r1).mul(wv).add(bv).intoMemorySegment(y, yb + row + o, NATIVE);
      FloatVector.fromMemorySegment(S, x, xb + 2 * row + o, NATIVE).sub(m2).mul(r2).mul(wv).add(bv)
          .intoMemorySegment(y, yb + 2 * row + o, NATIVE);
      FloatVector.fromMemorySegment(S, x, xb + 3 * row + o, NATIVE).sub(m3).mul(r3).mul(wv).add(bv)
          .intoMemorySegment(y, yb + 3 * row + o, NATIVE);
    }
  }

  /** y = (x − mu)·rs over the whole vectors of a block of four rows at byte offsets xb, yb (mean, rstd at mb, rb). */
  private static void plainBlock(MemorySegment x, long xb, MemorySegment y, long yb, MemorySegment mean, long mb, MemorySegment rstd, long rb,
                                 int n) {
    long row = n * 4L;
    float m0 = mean.get(F, mb), m1 = mean.get(F, mb + 4), m2 = mean.get(F, mb + 8), m3 = mean.get(F, mb + 12);
    float r0 = rstd.get(F, rb), r1 = rstd.get(F, rb + 4), r2 = rstd.get(F, rb + 8), r3 = rstd.get(F, rb + 12);
    for (int j = 0; j + L <= n; j += L) {
      long o = j * 4L;
      FloatVector.fromMemorySegment(S, x, xb + o, NATIVE).sub(m0).mul(r0).intoMemorySegment(y, yb + o, NATIVE);
      FloatVector.fromMemorySegment(S, x, xb + row + o, NATIVE).sub(m1).mul(r1).intoMemorySegment(y, yb + row + o, NATIVE);
      FloatVector.fromMemorySegment(S, x, xb + 2 * row + o, NATIVE).sub(m2).mul(r2).intoMemorySegment(y, yb + 2 * row + o, NATIVE);
      FloatVector.fromMemorySegment(S, x, xb + 3 * row + o, NATIVE).sub(m3).mul(r3).intoMemorySegment(y, yb + 3 * row + o, NATIVE);
    }
  }

  /**
   * y = (x − mu)·rs·w + b over elements [from, n) of row r (w, b may be null): whole vectors first when w and b
   * are both present or both absent, then one vector at a time with the masked tail.
   */
  private static void normaliseRow(Operands op, long r, int from) {
    int n = op.n, j = from;
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

  static long pack(float hi, float lo) { return (long) Float.floatToRawIntBits(hi) << 32 | (Float.floatToRawIntBits(lo) & 0xffffffffL); }

  static float high(long v) { return Float.intBitsToFloat((int) (v >>> 32)); }

  static float low(long v) { return Float.intBitsToFloat((int) v); }

  static void backward(CpuParallel par, Tensor gy, Tensor x, Tensor w, Tensor mean, Tensor rstd, Tensor gx, Tensor gw, Tensor gb) {
    LayerNormBackward.run(par, gy, x, w, mean, rstd, gx, gw, gb);
  }
}
