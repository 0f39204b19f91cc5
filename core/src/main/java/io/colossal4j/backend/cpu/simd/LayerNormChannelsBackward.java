package io.colossal4j.backend.cpu.simd;

import static io.colossal4j.backend.cpu.CpuBackend.segment;
import static io.colossal4j.backend.cpu.simd.RowOps.F;
import static io.colossal4j.backend.cpu.simd.RowOps.L;
import static io.colossal4j.backend.cpu.simd.RowOps.NATIVE;
import static io.colossal4j.backend.cpu.simd.VMath.S;

import io.colossal4j.backend.cpu.CpuParallel;
import io.colossal4j.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;

/**
 * The backward of {@link LayerNormChannels}, in x's channels-first layout with the lanes along the positions:
 * per (n, p), with x̂ = (x − mean)·rstd and h = g·w, gx = rstd·(h − mean_C(h) − x̂·mean_C(h·x̂)); gw = Σ g·x̂ and
 * gb = Σ g over n and p. Blocks of 2·L positions of one image (a tail, one masked vector at a time) take two
 * passes over the channels, the second from L1/L2. The blocks are cut into a fixed number of tasks of
 * consecutive blocks, taken in turn by the pool's threads and the caller; each task keeps per-channel,
 * per-lane partials of gw and gb, which are summed in task and lane order at the end, so the result does
 * not depend on the thread count and no block needs a horizontal sum.
 */
final class LayerNormChannelsBackward {
  private LayerNormChannelsBackward() {}

  private static final int TASKS = 8;

  /** One call's operands: g, x, gx [N, C, P] at element offsets go, xo, oo; mean and rstd [N·P]; w [C] or null. */
  private record Op(MemorySegment g, long go, MemorySegment x, long xo, MemorySegment out, long oo, MemorySegment w, long wo,
                    MemorySegment mean, long mo, MemorySegment rstd, long ro, int c, long p) {}

  static void run(CpuParallel par, Tensor gy, Tensor x, Tensor w, Tensor mean, Tensor rstd, Tensor gx, Tensor gw, Tensor gb) {
    int n = x.size(0), c = x.size(1);
    long p = x.numel() / Math.max(1L, (long) n * c);
    long perImage = (p + 2L * L - 1) / (2L * L), blocks = n * perImage;
    int tasks = (int) Math.max(1, Math.min(TASKS, blocks));
    float[][] accW = new float[tasks][c * L], accB = new float[tasks][c * L];
    if (blocks > 0 && c > 0) {
      Op op = new Op(segment(gy), gy.offset(), segment(x), x.offset(), segment(gx), gx.offset(), w == null ? null : segment(w),
          w == null ? 0 : w.offset(), segment(mean), mean.offset(), segment(rstd), rstd.offset(), c, p);
      par.forEachChunk(tasks, t -> {
        float[] aw = accW[(int) t], ab = accB[(int) t];
        for (long k = blocks * t / tasks; k < blocks * (t + 1) / tasks; k++) {
          long img = k / perImage, p0 = k % perImage * 2 * L;
          if (p0 + 2L * L <= p) block2(op, img, p0, aw, ab);
          else for (long q = p0; q < p; q += L) block1(op, img, q, S.indexInRange(0, (int) Math.min(L, p - q)), aw, ab);
        }
      });
    }
    if (gw != null) writeSums(accW, c, gw);
    if (gb != null) writeSums(accB, c, gb);
  }

  /** Positions [p0, p0 + 2L) of image img. */
  private static void block2(Op op, long img, long p0, float[] aw, float[] ab) {
    long e0 = img * op.c * op.p + p0, so = (img * op.p + p0) * 4; // element offset of [img, 0, p0]; byte offset of its statistics
    FloatVector m0 = FloatVector.fromMemorySegment(S, op.mean, op.mo * 4 + so, NATIVE), m1 = FloatVector.fromMemorySegment(S, op.mean, op.mo * 4 + so + 4L * L, NATIVE);
    FloatVector r0 = FloatVector.fromMemorySegment(S, op.rstd, op.ro * 4 + so, NATIVE), r1 = FloatVector.fromMemorySegment(S, op.rstd, op.ro * 4 + so + 4L * L, NATIVE);
    FloatVector h0 = FloatVector.zero(S), h1 = h0, hx0 = h0, hx1 = h0;
    for (int ch = 0; ch < op.c; ch++) {
      long e = e0 + ch * op.p;
      FloatVector x0 = FloatVector.fromMemorySegment(S, op.x, (op.xo + e) * 4, NATIVE).sub(m0).mul(r0);
      FloatVector x1 = FloatVector.fromMemorySegment(S, op.x, (op.xo + e) * 4 + 4L * L, NATIVE).sub(m1).mul(r1);
      FloatVector g0 = FloatVector.fromMemorySegment(S, op.g, (op.go + e) * 4, NATIVE), g1 = FloatVector.fromMemorySegment(S, op.g, (op.go + e) * 4 + 4L * L, NATIVE);
      accumulate(aw, ab, ch, g0.mul(x0).add(g1.mul(x1)), g0.add(g1));
      float wc = op.w == null ? 1 : op.w.getAtIndex(F, op.wo + ch);
      FloatVector a0 = g0.mul(wc), a1 = g1.mul(wc);
      h0 = h0.add(a0);
      h1 = h1.add(a1);
      hx0 = a0.fma(x0, hx0);
      hx1 = a1.fma(x1, hx1);
    }
    FloatVector mh0 = h0.div(op.c), mh1 = h1.div(op.c), mhx0 = hx0.div(op.c), mhx1 = hx1.div(op.c);
    for (int ch = 0; ch < op.c; ch++) {
      long e = e0 + ch * op.p;
      float wc = op.w == null ? 1 : op.w.getAtIndex(F, op.wo + ch);
      gradient(op, e * 4, wc, m0, r0, mh0, mhx0);
      gradient(op, e * 4 + 4L * L, wc, m1, r1, mh1, mhx1);
    }
  }

  /** One vector of gx = (g·w − mh − x̂·mhx)·rs at byte offset eb (relative to the tensors' own offsets). */
  private static void gradient(Op op, long eb, float wc, FloatVector mu, FloatVector rs, FloatVector mh, FloatVector mhx) {
    FloatVector xh = FloatVector.fromMemorySegment(S, op.x, op.xo * 4 + eb, NATIVE).sub(mu).mul(rs);
    FloatVector h = FloatVector.fromMemorySegment(S, op.g, op.go * 4 + eb, NATIVE).mul(wc);
    h.sub(mh).sub(xh.mul(mhx)).mul(rs).intoMemorySegment(op.out, op.oo * 4 + eb, NATIVE);
  }

  /** Positions [q, q + L) of image img under mask m (the image's tail): padding lanes load 0 and add nothing. */
  private static void block1(Op op, long img, long q, VectorMask<Float> m, float[] aw, float[] ab) {
    long e0 = img * op.c * op.p + q, so = (img * op.p + q) * 4;
    FloatVector mu = FloatVector.fromMemorySegment(S, op.mean, op.mo * 4 + so, NATIVE, m), rs = FloatVector.fromMemorySegment(S, op.rstd, op.ro * 4 + so, NATIVE, m);
    FloatVector h = FloatVector.zero(S), hx = h;
    for (int ch = 0; ch < op.c; ch++) {
      long e = e0 + ch * op.p;
      FloatVector xh = FloatVector.fromMemorySegment(S, op.x, (op.xo + e) * 4, NATIVE, m).sub(mu).mul(rs);
      FloatVector g = FloatVector.fromMemorySegment(S, op.g, (op.go + e) * 4, NATIVE, m);
      accumulate(aw, ab, ch, g.mul(xh), g);
      FloatVector a = g.mul(op.w == null ? 1 : op.w.getAtIndex(F, op.wo + ch));
      h = h.add(a);
      hx = a.fma(xh, hx);
    }
    FloatVector mh = h.div(op.c), mhx = hx.div(op.c);
    for (int ch = 0; ch < op.c; ch++) {
      long e = e0 + ch * op.p;
      FloatVector xh = FloatVector.fromMemorySegment(S, op.x, (op.xo + e) * 4, NATIVE, m).sub(mu).mul(rs);
      FloatVector a = FloatVector.fromMemorySegment(S, op.g, (op.go + e) * 4, NATIVE, m).mul(op.w == null ? 1 : op.w.getAtIndex(F, op.wo + ch));
      a.sub(mh).sub(xh.mul(mhx)).mul(rs).intoMemorySegment(op.out, (op.oo + e) * 4, NATIVE, m);
    }
  }

  /** Adds the lanes of gx̂ and g to channel ch's partials. */
  private static void accumulate(float[] aw, float[] ab, int ch, FloatVector gxh, FloatVector g) {
    FloatVector.fromArray(S, aw, ch * L).add(gxh).intoArray(aw, ch * L);
    FloatVector.fromArray(S, ab, ch * L).add(g).intoArray(ab, ch * L);
  }

  /** dst[ch] = Σ over tasks, then lanes, of the partials, in that fixed order. */
  private static void writeSums(float[][] parts, int c, Tensor dst) {
    MemorySegment s = segment(dst);
    for (int ch = 0; ch < c; ch++) {
      float v = 0;
      for (float[] part : parts) for (int lane = 0; lane < L; lane++) v += part[ch * L + lane];
      s.setAtIndex(F, dst.offset() + ch, v);
    }
  }
}
