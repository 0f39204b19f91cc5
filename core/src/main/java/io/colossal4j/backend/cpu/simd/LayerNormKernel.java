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
 * Layer norm over the last dim of a contiguous f32 x viewed as [rows, n], and its backward. Forward uses two
 * passes for the statistics (mean, then the centred sum of squares), which stays accurate when |mean| ≫ std
 * where the one-pass E[x²] − E[x]² would cancel. Backward: per row gx = rstd·(g·w − mean(g·w) − x̂·mean(g·w·x̂))
 * (see {@link LayerNormBackward}). w, b, gw, gb must have unit stride (the caller checks).
 *
 * <p>Rows are processed in chunks of consecutive rows ({@link RowOps#forRowChunks}); each row is read from
 * memory once, by its first pass, and from L1 by the other two (a 1024-float row is 4 KiB). Fusing the sum of
 * row r + 1 into the pass that writes row r (so that its trip from memory overlaps row r's stores) measured
 * about 40% slower on one thread (4096 × 1024, thread CPU time), and was dropped.
 */
final class LayerNormKernel {
  private LayerNormKernel() {}

  static void forward(CpuParallel par, Tensor x, Tensor w, Tensor b, float eps, Tensor y, Tensor mean, Tensor rstd) {
    int n = x.size(-1);
    long rows = x.numel() / Math.max(1, n);
    MemorySegment sx = segment(x), sy = segment(y), sm = segment(mean), sr = segment(rstd);
    MemorySegment sw = w == null ? null : segment(w), sb = b == null ? null : segment(b);
    long wo = w == null ? 0 : w.offset(), bo = b == null ? 0 : b.offset();
    long xo = x.offset(), yo = y.offset(), mo = mean.offset(), ro = rstd.offset();
    RowOps.forRowChunks(par, rows, n, (r0, r1) -> {
      for (long r = r0; r < r1; r++) {
        float mu = rowSum(sx, xo + r * n, n) / n;
        float rs = (float) (1 / Math.sqrt(centredSquares(sx, xo + r * n, n, mu) / n + (double) eps));
        sm.setAtIndex(F, mo + r, mu);
        sr.setAtIndex(F, ro + r, rs);
        normalise(sx, xo + r * n, sw, wo, sb, bo, mu, rs, sy, yo + r * n, n);
      }
    });
  }

  /*
   * The passes over a row, each its own small method so that the JIT compiles each as an ordinary hot method
   * with every vector in a register (a lambda's loop would be compiled by on-stack replacement, and one big
   * method exceeds the inlining budget, which boxes vectors). Main loops go four vectors at a time, unmasked
   * (the loop overhead of one vector per iteration was measurable); the rest of the row, the masked tail
   * included, goes one vector at a time into the first accumulator. Four accumulators because one would
   * serialise a pass on the add latency.
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
    for (; j < n; j += L) a0 = a0.add(load(x, xo, j, n)); // masked load: padding lanes are 0
    return sumTree(a0.add(a1).add(a2.add(a3)));
  }

  /** Σ (x − mu)² over one row: no E[x²] − E[x]² cancellation when |mean| ≫ std. */
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

  /** y = ((x − mu)·rs)·w + b over one row (w, b may be null; multiply, then add: the rounding of every path). */
  private static void normalise(MemorySegment x, long xo, MemorySegment w, long wo, MemorySegment b, long bo, float mu, float rs,
                                MemorySegment y, long yo, int n) {
    int j = 0;
    if (w != null && b != null)
      for (; j + 4 * L <= n; j += 4 * L) affine4(x, (xo + j) * 4, w, (wo + j) * 4, b, (bo + j) * 4, mu, rs, y, (yo + j) * 4);
    else if (w == null && b == null)
      for (; j + 4 * L <= n; j += 4 * L) plain4(x, (xo + j) * 4, mu, rs, y, (yo + j) * 4);
    normaliseTail(x, xo, w, wo, b, bo, mu, rs, y, yo, n, j);
  }

  /** Four vectors of y = ((x − mu)·rs)·w + b at byte offsets xb, wb, bb, yb. */
  private static void affine4(MemorySegment x, long xb, MemorySegment w, long wb, MemorySegment b, long bb, float mu, float rs, MemorySegment y, long yb) {
    FloatVector v0 = FloatVector.fromMemorySegment(S, x, xb, NATIVE).sub(mu).mul(rs);
    FloatVector v1 = FloatVector.fromMemorySegment(S, x, xb + 4L * L, NATIVE).sub(mu).mul(rs);
    FloatVector v2 = FloatVector.fromMemorySegment(S, x, xb + 8L * L, NATIVE).sub(mu).mul(rs);
    FloatVector v3 = FloatVector.fromMemorySegment(S, x, xb + 12L * L, NATIVE).sub(mu).mul(rs);
    v0.mul(FloatVector.fromMemorySegment(S, w, wb, NATIVE)).add(FloatVector.fromMemorySegment(S, b, bb, NATIVE)).intoMemorySegment(y, yb, NATIVE);
    v1.mul(FloatVector.fromMemorySegment(S, w, wb + 4L * L, NATIVE)).add(FloatVector.fromMemorySegment(S, b, bb + 4L * L, NATIVE))
        .intoMemorySegment(y, yb + 4L * L, NATIVE);
    v2.mul(FloatVector.fromMemorySegment(S, w, wb + 8L * L, NATIVE)).add(FloatVector.fromMemorySegment(S, b, bb + 8L * L, NATIVE))
        .intoMemorySegment(y, yb + 8L * L, NATIVE);
    v3.mul(FloatVector.fromMemorySegment(S, w, wb + 12L * L, NATIVE)).add(FloatVector.fromMemorySegment(S, b, bb + 12L * L, NATIVE))
        .intoMemorySegment(y, yb + 12L * L, NATIVE);
  }

  /** Four vectors of y = (x − mu)·rs at byte offsets xb, yb. */
  private static void plain4(MemorySegment x, long xb, float mu, float rs, MemorySegment y, long yb) {
    FloatVector.fromMemorySegment(S, x, xb, NATIVE).sub(mu).mul(rs).intoMemorySegment(y, yb, NATIVE);
    FloatVector.fromMemorySegment(S, x, xb + 4L * L, NATIVE).sub(mu).mul(rs).intoMemorySegment(y, yb + 4L * L, NATIVE);
    FloatVector.fromMemorySegment(S, x, xb + 8L * L, NATIVE).sub(mu).mul(rs).intoMemorySegment(y, yb + 8L * L, NATIVE);
    FloatVector.fromMemorySegment(S, x, xb + 12L * L, NATIVE).sub(mu).mul(rs).intoMemorySegment(y, yb + 12L * L, NATIVE);
  }

  /** y = (x − mu)·rs·w + b over elements [from, n) of one row (w, b may be null), one vector at a time. */
  private static void normaliseTail(MemorySegment x, long xo, MemorySegment w, long wo, MemorySegment b, long bo, float mu, float rs,
                                    MemorySegment y, long yo, int n, int from) {
    for (int j = from; j < n; j += L) {
      FloatVector v = load(x, xo, j, n).sub(mu).mul(rs);
      if (w != null) v = v.mul(load(w, wo, j, n));
      if (b != null) v = v.add(load(b, bo, j, n));
      store(v, y, yo, j, n);
    }
  }

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
