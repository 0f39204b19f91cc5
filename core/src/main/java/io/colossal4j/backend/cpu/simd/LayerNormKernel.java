package io.colossal4j.backend.cpu.simd;

import static io.colossal4j.backend.cpu.CpuBackend.segment;
import static io.colossal4j.backend.cpu.simd.RowOps.F;
import static io.colossal4j.backend.cpu.simd.RowOps.L;
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
    par.forRange(rows, RowOps.grain(n), (r0, r1) -> {
      for (long r = r0; r < r1; r++)
        forwardRow(sx, x.offset() + r * n, sw, wo, sb, bo, eps, sy, y.offset() + r * n, n, sm, mean.offset() + r, sr, rstd.offset() + r);
    });
  }

  /**
   * One row. A method per row rather than a loop inside the task lambda, so the JIT compiles it as an
   * ordinary hot method after a few calls instead of through on-stack replacement of the lambda's loop.
   */
  private static void forwardRow(MemorySegment sx, long xo, MemorySegment sw, long wo, MemorySegment sb, long bo, float eps,
                                 MemorySegment sy, long yo, int n, MemorySegment sm, long mo, MemorySegment sr, long ro) {
    FloatVector acc = FloatVector.zero(S);
    for (int j = 0; j < n; j += L) acc = acc.add(load(sx, xo, j, n), S.indexInRange(j, n));
    float mu = VMath.sumLanes(acc) / n;
    acc = FloatVector.zero(S);
    for (int j = 0; j < n; j += L) {
      FloatVector d = load(sx, xo, j, n).sub(mu);
      acc = acc.add(d.mul(d), S.indexInRange(j, n));
    }
    float rs = (float) (1 / Math.sqrt(VMath.sumLanes(acc) / n + (double) eps));
    sm.setAtIndex(F, mo, mu);
    sr.setAtIndex(F, ro, rs);
    for (int j = 0; j < n; j += L) {
      FloatVector v = load(sx, xo, j, n).sub(mu).mul(rs);
      if (sw != null) v = v.mul(load(sw, wo, j, n));
      if (sb != null) v = v.add(load(sb, bo, j, n));
      store(v, sy, yo, j, n);
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
