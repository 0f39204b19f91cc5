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
import jdk.incubator.vector.VectorOperators;

/**
 * Layer norm over the last dim of a contiguous f32 x viewed as [rows, n], and its backward. Forward uses two
 * passes (mean, then the centred sum of squares), which stays accurate when |mean| ≫ std where the one-pass
 * E[x²] − E[x]² would cancel. Backward: per row gx = rstd·(g·w − mean(g·w) − x̂·mean(g·w·x̂)); the
 * parameter gradients Σ_rows g·x̂ and Σ_rows g are accumulated in one f32 partial per task and summed at
 * the end, so tasks never share a buffer. w, b, gw, gb must have unit stride (the caller checks).
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
    RowOps.forRows(par, rows, n, r -> {
      float mu = rowSum(sx, xo + r * n, n) / n;
      float rs = (float) (1 / Math.sqrt(centredSquares(sx, xo + r * n, n, mu) / n + (double) eps));
      sm.setAtIndex(F, mo + r, mu);
      sr.setAtIndex(F, ro + r, rs);
      normalise(sx, xo + r * n, sw, wo, sb, bo, mu, rs, sy, yo + r * n, n);
    });
  }

  /*
   * The three passes over one row, each its own small method so that the JIT compiles each as an ordinary
   * hot method (not through on-stack replacement of a lambda's loop) with every vector in a register. The
   * first pass brings the row into L1 (a 1024-float row is 4 KiB); the other two read it from there. Sums use
   * four (two) independent accumulators, because one would serialise the pass on the add latency; the
   * unmasked main loop leaves the mask to the one tail vector.
   */

  private static float rowSum(MemorySegment x, long xo, int n) {
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
    return VMath.sumLanes(a0.add(a1).add(a2.add(a3)));
  }

  /** Σ (x − mu)², two passes' worth of accuracy: no E[x²] − E[x]² cancellation when |mean| ≫ std. */
  private static float centredSquares(MemorySegment x, long xo, int n, float mu) {
    FloatVector a0 = FloatVector.zero(S), a1 = a0;
    int j = 0;
    for (; j + 2 * L <= n; j += 2 * L) {
      long o = (xo + j) * 4;
      FloatVector d0 = FloatVector.fromMemorySegment(S, x, o, NATIVE).sub(mu), d1 = FloatVector.fromMemorySegment(S, x, o + 4L * L, NATIVE).sub(mu);
      a0 = d0.fma(d0, a0);
      a1 = d1.fma(d1, a1);
    }
    for (; j < n; j += L) {
      FloatVector d = load(x, xo, j, n).sub(mu);
      a0 = a0.add(d.mul(d), S.indexInRange(j, n));
    }
    return VMath.sumLanes(a0.add(a1));
  }

  /** y = (x − mu)·rs·w + b over one row (w, b may be null). */
  private static void normalise(MemorySegment x, long xo, MemorySegment w, long wo, MemorySegment b, long bo, float mu, float rs,
                                MemorySegment y, long yo, int n) {
    int j = 0;
    if (w != null && b != null) {
      for (; j + L <= n; j += L) {
        FloatVector v = FloatVector.fromMemorySegment(S, x, (xo + j) * 4, NATIVE).sub(mu).mul(rs);
        // multiply, then add (not one fma): the same rounding as the masked tail and the other paths
        v.mul(FloatVector.fromMemorySegment(S, w, (wo + j) * 4, NATIVE)).add(FloatVector.fromMemorySegment(S, b, (bo + j) * 4, NATIVE))
            .intoMemorySegment(y, (yo + j) * 4, NATIVE);
      }
    }
    for (; j < n; j += L) {
      FloatVector v = load(x, xo, j, n).sub(mu).mul(rs);
      if (w != null) v = v.mul(load(w, wo, j, n));
      if (b != null) v = v.add(load(b, bo, j, n));
      store(v, y, yo, j, n);
    }
  }

  static void backward(CpuParallel par, Tensor gy, Tensor x, Tensor w, Tensor mean, Tensor rstd, Tensor gx, Tensor gw, Tensor gb) {
    int n = x.size(-1);
    long rows = x.numel() / Math.max(1, n);
    int tasks = (int) Math.max(1, Math.min(par.threads(), rows));
    float[][] accW = new float[tasks][n], accB = new float[tasks][n];
    MemorySegment sg = segment(gy), sx = segment(x), sm = segment(mean), sr = segment(rstd), so = segment(gx);
    MemorySegment sw = w == null ? null : segment(w);
    long wo = w == null ? 0 : w.offset();
    par.forRange(tasks, 1, (t0, t1) -> {
      for (long t = t0; t < t1; t++) {
        float[] aw = accW[(int) t], ab = accB[(int) t];
        for (long r = rows * t / tasks; r < rows * (t + 1) / tasks; r++)
          backwardRow(sg, gy.offset() + r * n, sx, x.offset() + r * n, sw, wo, sm.getAtIndex(F, mean.offset() + r),
              sr.getAtIndex(F, rstd.offset() + r), so, gx.offset() + r * n, n, aw, ab);
      }
    });
    if (gw != null) writeSum(accW, gw);
    if (gb != null) writeSum(accB, gb);
  }

  private static void backwardRow(MemorySegment sg, long go, MemorySegment sx, long xo, MemorySegment sw, long wo, float mu, float rs,
                                  MemorySegment so, long oo, int n, float[] aw, float[] ab) {
    FloatVector sumG = FloatVector.zero(S), sumGX = FloatVector.zero(S);
    for (int j = 0; j < n; j += L) {
      var m = S.indexInRange(j, n);
      FloatVector xh = load(sx, xo, j, n).sub(mu).mul(rs), g = load(sg, go, j, n);
      FloatVector.fromArray(S, aw, j, m).add(g.mul(xh)).intoArray(aw, j, m);
      FloatVector.fromArray(S, ab, j, m).add(g).intoArray(ab, j, m);
      FloatVector gw1 = sw == null ? g : g.mul(load(sw, wo, j, n));
      sumG = sumG.add(gw1, m);
      sumGX = sumGX.add(gw1.mul(xh), m);
    }
    float mg = VMath.sumLanes(sumG) / n, mgx = VMath.sumLanes(sumGX) / n;
    for (int j = 0; j < n; j += L) {
      FloatVector xh = load(sx, xo, j, n).sub(mu).mul(rs), g = load(sg, go, j, n);
      FloatVector gw1 = sw == null ? g : g.mul(load(sw, wo, j, n));
      store(gw1.sub(mg).sub(xh.mul(mgx)).mul(rs), so, oo, j, n);
    }
  }

  private static void writeSum(float[][] parts, Tensor dst) {
    MemorySegment s = segment(dst);
    for (int i = 0; i < parts[0].length; i++) {
      float v = 0;
      for (float[] p : parts) v += p[i];
      s.setAtIndex(F, dst.offset() + i, v);
    }
  }
}
