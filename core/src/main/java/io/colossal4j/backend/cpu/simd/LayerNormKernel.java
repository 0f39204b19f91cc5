package io.colossal4j.backend.cpu.simd;

import static io.colossal4j.backend.cpu.CpuBackend.segment;
import static io.colossal4j.backend.cpu.simd.RowOps.F;
import static io.colossal4j.backend.cpu.simd.RowOps.L;
import static io.colossal4j.backend.cpu.simd.RowOps.NATIVE;
import static io.colossal4j.backend.cpu.simd.RowOps.load;
import static io.colossal4j.backend.cpu.simd.RowOps.store;
import static io.colossal4j.backend.cpu.simd.VMath.S;

import io.colossal4j.backend.cpu.CpuParallel;
import io.colossal4j.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorShuffle;

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
          if (w != null) affineBlock(x, (xo + r * n) * 4, w, wo * 4, b, bo * 4, y, (yo + r * n) * 4, stats(r), n);
          else plainBlock(x, (xo + r * n) * 4, y, (yo + r * n) * 4, stats(r), n);
          if (n % L != 0) for (int i = 0; i < BLOCK; i++) normaliseRow(this, r + i, n - n % L);
        }
      for (; r < r1; r++) {
        statistics(this, r);
        normaliseRow(this, r, 0);
      }
    }

    /** mean and rstd of rows r .. r + 3, as {@link Stats}. */
    private Stats stats(long r) {
      return new Stats(mean.getAtIndex(F, mo + r), mean.getAtIndex(F, mo + r + 1), mean.getAtIndex(F, mo + r + 2), mean.getAtIndex(F, mo + r + 3),
          rstd.getAtIndex(F, ro + r), rstd.getAtIndex(F, ro + r + 1), rstd.getAtIndex(F, ro + r + 2), rstd.getAtIndex(F, ro + r + 3));
    }
  }

  /** mean and rstd of the four rows of a block (a value the JIT scalarises: it never leaves the call). */
  private record Stats(float m0, float m1, float m2, float m3, float r0, float r1, float r2, float r3) {}

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
   * Writes mean and rstd of row r. One pass of shifted sums: with k the mean of the row's first vector (its
   * first element when the row is shorter), d = x − k, the lanes sum d and d²; then mean = k + Σd/n and
   * var = Σd²/n − (Σd/n)². The subtraction cancels the bits that (mean − k)² takes of Σd²/n, so when that is
   * more than half of it (k far from the mean relative to the spread, as in a row that trends or whose first
   * elements are outliers) the centred Σ(x − mean)² is taken in a second pass, over the row now in L1. So at
   * most one bit is lost against the two-pass form, whatever |mean| is; on rows of independent values k is
   * within about std/4 of the mean and the second pass never runs.
   */
  private static void statistics(Operands op, long r) {
    int n = op.n;
    long xo = op.xo + r * n;
    float k = n >= L ? sumTree(FloatVector.fromMemorySegment(S, op.x, xo * 4, NATIVE)) / L : op.x.getAtIndex(F, xo);
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
   * (the loop overhead of one vector per iteration was measurable); the rest of the row, the masked tail
   * included, goes one vector at a time into the first accumulator. Four accumulators because one would
   * serialise a pass on the add latency.
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
    for (; j < n; j += L) {
      var m = S.indexInRange(j, n);
      FloatVector d = load(x, xo, j, n).sub(k);
      s0 = s0.add(d, m); // padding lanes keep the sums: they would add −k and k² otherwise
      q0 = q0.add(d.mul(d), m);
    }
    return pack(sumTree(s0.add(s1).add(s2.add(s3))), sumTree(q0.add(q1).add(q2.add(q3))));
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
    for (; j < n; j += L) {
      FloatVector d = load(x, xo, j, n).sub(mu);
      a0 = a0.add(d.mul(d), S.indexInRange(j, n)); // padding lanes keep a0: they would add mu² otherwise
    }
    return sumTree(a0.add(a1).add(a2.add(a3)));
  }

  /**
   * y = ((x − mu)·rs)·w + b over the whole vectors of a block of four rows at byte offsets xb, yb (w, b at wb, bb):
   * one load of w and b per vector for the four rows. Multiply, then add: the rounding of every path.
   */
  private static void affineBlock(MemorySegment x, long xb, MemorySegment w, long wb, MemorySegment b, long bb, MemorySegment y, long yb,
                                  Stats s, int n) {
    long row = n * 4L;
    float m0 = s.m0, m1 = s.m1, m2 = s.m2, m3 = s.m3, r0 = s.r0, r1 = s.r1, r2 = s.r2, r3 = s.r3;
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

  /** y = (x − mu)·rs over the whole vectors of a block of four rows at byte offsets xb, yb. */
  private static void plainBlock(MemorySegment x, long xb, MemorySegment y, long yb, Stats s, int n) {
    long row = n * 4L;
    float m0 = s.m0, m1 = s.m1, m2 = s.m2, m3 = s.m3, r0 = s.r0, r1 = s.r1, r2 = s.r2, r3 = s.r3;
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
    for (; j < n; j += L) {
      FloatVector v = load(x, xo, j, n).sub(mu).mul(rs);
      if (w != null) v = v.mul(load(w, op.wo, j, n));
      if (b != null) v = v.add(load(b, op.bo, j, n));
      store(v, y, yo, j, n);
    }
  }

  static long pack(float hi, float lo) { return (long) Float.floatToRawIntBits(hi) << 32 | (Float.floatToRawIntBits(lo) & 0xffffffffL); }

  static float high(long v) { return Float.intBitsToFloat((int) (v >>> 32)); }

  static float low(long v) { return Float.intBitsToFloat((int) v); }

  private static final VectorShuffle<Float> SWAP8 = swap(8), SWAP4 = swap(4), SWAP2 = swap(2), SWAP1 = swap(1);

  private static VectorShuffle<Float> swap(int k) { return k < L ? VectorShuffle.fromOp(S, i -> i ^ k) : null; }

  /**
   * Sum of the lanes as a fixed tree (lane i with lane i ^ 8, then ^ 4, ^ 2, ^ 1): exact lane operations, so
   * the result is the same whether or not the JIT has intrinsified them (unlike {@code reduceLanes(ADD)}),
   * and unlike a copy to an array it allocates nothing.
   */
  static float sumTree(FloatVector v) {
    if (L > 8) v = v.add(v.rearrange(SWAP8));
    if (L > 4) v = v.add(v.rearrange(SWAP4));
    if (L > 2) v = v.add(v.rearrange(SWAP2));
    if (L > 1) v = v.add(v.rearrange(SWAP1));
    return v.lane(0);
  }

  static void backward(CpuParallel par, Tensor gy, Tensor x, Tensor w, Tensor mean, Tensor rstd, Tensor gx, Tensor gw, Tensor gb) {
    LayerNormBackward.run(par, gy, x, w, mean, rstd, gx, gw, gb);
  }
}
