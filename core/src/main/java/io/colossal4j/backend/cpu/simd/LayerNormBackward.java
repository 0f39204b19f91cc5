package io.colossal4j.backend.cpu.simd;

import static io.colossal4j.backend.cpu.CpuBackend.segment;
import static io.colossal4j.backend.cpu.simd.RowOps.F;
import static io.colossal4j.backend.cpu.simd.RowOps.L;
import static io.colossal4j.backend.cpu.simd.RowOps.NATIVE;
import static io.colossal4j.backend.cpu.simd.RowOps.load;
import static io.colossal4j.backend.cpu.simd.VMath.S;

import io.colossal4j.backend.cpu.CpuParallel;
import io.colossal4j.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;

/**
 * Layer norm's backward over the last dim of contiguous f32 [rows, n] tensors. Per row, with x̂ = (x − mean)·rstd
 * and h = g·w (g where w is null): gx = rstd·(h − mean(h) − x̂·mean(h·x̂)); over all rows gw = Σ g·x̂ and gb = Σ g.
 *
 * <p>The rows are cut into a fixed number of tasks of consecutive rows ({@link #tasks}: it depends on the
 * row count only, not on the threads), which the pool's threads and the caller take in turn. Each task sums
 * its gw and gb partials in its own arrays (lent by the backend's {@link ScratchPool}: no garbage per call); the
 * partials are added in task order at the end, so the result never depends on which thread ran which task.
 * Each row is read twice, the second time from L1.
 */
final class LayerNormBackward {
  private LayerNormBackward() {}

  /** Tasks per call: enough for two or four threads to balance on a busy machine, few enough to keep the partials small. */
  static final int MAX_TASKS = 8;

  static int tasks(long rows) { return (int) Math.max(1, Math.min(MAX_TASKS, rows)); }

  static void run(CpuParallel par, ScratchPool scratch, Tensor gy, Tensor x, Tensor w, Tensor mean, Tensor rstd, Tensor gx, Tensor gw, Tensor gb) {
    int n = x.size(-1);
    long rows = x.numel() / Math.max(1, n);
    if (rows == 0) {
      zero(gw);
      zero(gb);
      return;
    }
    int tasks = tasks(rows);
    float[] accW = scratch.floats(tasks * n), accB = scratch.floats(tasks * n);   // task t's partials at [t·n, t·n + n)
    MemorySegment sg = segment(gy), sx = segment(x), sm = segment(mean), sr = segment(rstd), so = segment(gx);
    MemorySegment sw = w == null ? null : segment(w);
    long wo = w == null ? 0 : w.offset(), go = gy.offset(), xo = x.offset(), oo = gx.offset();
    par.forEachChunk(tasks, t -> {
      float[] aw = scratch.zeroed(n), ab = scratch.zeroed(n);   // the task's own, so threads never share a cache line
      for (long r = rows * t / tasks; r < rows * (t + 1) / tasks; r++) {
        float mu = sm.getAtIndex(F, mean.offset() + r), rs = sr.getAtIndex(F, rstd.offset() + r);
        long sums = rowSums(sg, go + r * n, sx, xo + r * n, sw, wo, mu, rs, n, aw, ab);
        writeRow(sg, go + r * n, sx, xo + r * n, sw, wo, mu, rs, high(sums) / n, low(sums) / n, so, oo + r * n, n);
      }
      System.arraycopy(aw, 0, accW, (int) t * n, n);
      System.arraycopy(ab, 0, accB, (int) t * n, n);
      scratch.give(aw, ab);
    });
    if (gw != null) writeSum(accW, tasks, gw);
    if (gb != null) writeSum(accB, tasks, gb);
    scratch.give(accW, accB);
  }

  /**
   * First pass over a row: adds g·x̂ to aw and g to ab, and returns Σ h and Σ h·x̂ packed as two floats
   * ({@link #high}, {@link #low}: a pair without an allocation per row).
   */
  private static long rowSums(MemorySegment g, long go, MemorySegment x, long xo, MemorySegment w, long wo, float mu, float rs, int n,
                              float[] aw, float[] ab) {
    FloatVector sumH = FloatVector.zero(S), sumHX = sumH;
    int j = 0;
    for (; j + L <= n; j += L) {
      FloatVector xh = FloatVector.fromMemorySegment(S, x, (xo + j) * 4, NATIVE).sub(mu).mul(rs);
      FloatVector gv = FloatVector.fromMemorySegment(S, g, (go + j) * 4, NATIVE);
      gv.fma(xh, FloatVector.fromArray(S, aw, j)).intoArray(aw, j);
      gv.add(FloatVector.fromArray(S, ab, j)).intoArray(ab, j);
      FloatVector h = w == null ? gv : gv.mul(FloatVector.fromMemorySegment(S, w, (wo + j) * 4, NATIVE));
      sumH = sumH.add(h);
      sumHX = h.fma(xh, sumHX);
    }
    if (j < n) { // the tail: padding lanes load as 0, so g, h and their products are 0 there
      var m = S.indexInRange(j, n);
      FloatVector xh = load(x, xo, j, n).sub(mu).mul(rs), gv = load(g, go, j, n);
      gv.fma(xh, FloatVector.fromArray(S, aw, j, m)).intoArray(aw, j, m);
      gv.add(FloatVector.fromArray(S, ab, j, m)).intoArray(ab, j, m);
      FloatVector h = w == null ? gv : gv.mul(load(w, wo, j, n));
      sumH = sumH.add(h);
      sumHX = h.fma(xh, sumHX);
    }
    if (L > 8) { sumH = sumH.add(sumH.rearrange(RowOps.SWAP8)); sumHX = sumHX.add(sumHX.rearrange(RowOps.SWAP8)); }
    if (L > 4) { sumH = sumH.add(sumH.rearrange(RowOps.SWAP4)); sumHX = sumHX.add(sumHX.rearrange(RowOps.SWAP4)); }
    if (L > 2) { sumH = sumH.add(sumH.rearrange(RowOps.SWAP2)); sumHX = sumHX.add(sumHX.rearrange(RowOps.SWAP2)); }
    if (L > 1) { sumH = sumH.add(sumH.rearrange(RowOps.SWAP1)); sumHX = sumHX.add(sumHX.rearrange(RowOps.SWAP1)); }
    return pack(sumH.lane(0), sumHX.lane(0));
  }

  /**
   * Second pass: gx = (h − mh − x̂·mhx)·rs over one row; whole vectors unmasked, the tail under a mask written out
   * here (a helper returning a vector may be left out of line and box it).
   */
  private static void writeRow(MemorySegment g, long go, MemorySegment x, long xo, MemorySegment w, long wo, float mu, float rs, float mh, float mhx,
                               MemorySegment out, long oo, int n) {
    int j = 0;
    for (; j + L <= n; j += L) {
      FloatVector xh = FloatVector.fromMemorySegment(S, x, (xo + j) * 4, NATIVE).sub(mu).mul(rs);
      FloatVector gv = FloatVector.fromMemorySegment(S, g, (go + j) * 4, NATIVE);
      FloatVector h = w == null ? gv : gv.mul(FloatVector.fromMemorySegment(S, w, (wo + j) * 4, NATIVE));
      h.sub(mh).sub(xh.mul(mhx)).mul(rs).intoMemorySegment(out, (oo + j) * 4, NATIVE);
    }
    if (j < n) {
      VectorMask<Float> m = S.indexInRange(j, n);
      FloatVector xh = FloatVector.fromMemorySegment(S, x, (xo + j) * 4, NATIVE, m).sub(mu).mul(rs);
      FloatVector gv = FloatVector.fromMemorySegment(S, g, (go + j) * 4, NATIVE, m);
      FloatVector h = w == null ? gv : gv.mul(FloatVector.fromMemorySegment(S, w, (wo + j) * 4, NATIVE, m));
      h.sub(mh).sub(xh.mul(mhx)).mul(rs).intoMemorySegment(out, (oo + j) * 4, NATIVE, m);
    }
  }

  private static long pack(float hi, float lo) { return (long) Float.floatToRawIntBits(hi) << 32 | (Float.floatToRawIntBits(lo) & 0xffffffffL); }

  private static float high(long v) { return Float.intBitsToFloat((int) (v >>> 32)); }

  private static float low(long v) { return Float.intBitsToFloat((int) v); }

  /** dst = Σ over t of parts[t·n + i], added in part order (n = dst's size). */
  private static void writeSum(float[] parts, int count, Tensor dst) {
    MemorySegment s = segment(dst);
    int n = Math.toIntExact(dst.numel());
    for (int i = 0; i < n; i++) {
      float v = 0;
      for (int t = 0; t < count; t++) v += parts[t * n + i];
      s.setAtIndex(F, dst.offset() + i, v);
    }
  }

  private static void zero(Tensor t) {
    if (t == null) return;
    MemorySegment s = segment(t);
    for (long i = 0; i < t.numel(); i++) s.setAtIndex(F, t.offset() + i, 0f);
  }
}
