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
 * Layer norm over the channels of a contiguous f32 x [N, C, P...] without moving channels last: the vector
 * lanes run along the positions (contiguous in memory), so the statistics of L positions are computed at
 * once by adding C vectors, with no horizontal sums and no transposed copies. A block is 4·L positions of
 * one image (a tail block, fewer, one masked vector at a time); its C × 4·L values (24 KiB for C = 96) are
 * read from memory by the first of its three passes (sum, centred squares, normalise) and from L1/L2 by the
 * others. Blocks are independent and spread over the pool in chunks of about 64 KiB; results do not depend
 * on the thread count. w, b, mean and rstd must have unit stride (the caller checks).
 */
final class LayerNormChannels {
  private LayerNormChannels() {}

  /** One call's operands; x and y [N, C, P] at element offsets xo, yo; mean and rstd [N·P]; w, b [C] or null. */
  private record Op(MemorySegment x, long xo, MemorySegment y, long yo, MemorySegment w, long wo, MemorySegment b, long bo,
                    MemorySegment mean, long mo, MemorySegment rstd, long ro, int c, long p, float eps) {}

  static void forward(CpuParallel par, Tensor x, Tensor w, Tensor b, float eps, Tensor y, Tensor mean, Tensor rstd) {
    int n = x.size(0), c = x.size(1);
    long p = x.numel() / Math.max(1L, (long) n * c);
    if (p == 0 || c == 0) return;
    Op op = new Op(segment(x), x.offset(), segment(y), y.offset(), w == null ? null : segment(w), w == null ? 0 : w.offset(),
        b == null ? null : segment(b), b == null ? 0 : b.offset(), segment(mean), mean.offset(), segment(rstd), rstd.offset(), c, p, eps);
    long perImage = (p + 4L * L - 1) / (4L * L), blocks = n * perImage;
    long group = Math.max(1, (1 << 16) / ((long) c * 4 * L * 4)); // blocks per chunk: about 64 KiB of x
    par.forEachChunk((blocks + group - 1) / group, g -> {
      for (long k = g * group, e = Math.min(blocks, k + group); k < e; k++) {
        long img = k / perImage, p0 = k % perImage * 4 * L;
        if (p0 + 4L * L <= p) block4(op, img, p0);
        else for (long q = p0; q < p; q += L) block1(op, img, q, S.indexInRange(0, (int) Math.min(L, p - q)));
      }
    });
  }

  /** Positions [p0, p0 + 4L) of image img: the three passes with four vectors of positions in flight. */
  private static void block4(Op op, long img, long p0) {
    long base = op.xo + img * op.c * op.p + p0, step = op.p * 4; // element offset of x[img, 0, p0]; bytes per channel
    MemorySegment x = op.x;
    FloatVector s0 = FloatVector.zero(S), s1 = s0, s2 = s0, s3 = s0;
    for (long o = base * 4, end = o + op.c * step; o < end; o += step) {
      s0 = s0.add(FloatVector.fromMemorySegment(S, x, o, NATIVE));
      s1 = s1.add(FloatVector.fromMemorySegment(S, x, o + 4L * L, NATIVE));
      s2 = s2.add(FloatVector.fromMemorySegment(S, x, o + 8L * L, NATIVE));
      s3 = s3.add(FloatVector.fromMemorySegment(S, x, o + 12L * L, NATIVE));
    }
    FloatVector m0 = s0.div(op.c), m1 = s1.div(op.c), m2 = s2.div(op.c), m3 = s3.div(op.c);
    FloatVector q0 = FloatVector.zero(S), q1 = q0, q2 = q0, q3 = q0;
    for (long o = base * 4, end = o + op.c * step; o < end; o += step) {
      FloatVector d0 = FloatVector.fromMemorySegment(S, x, o, NATIVE).sub(m0), d1 = FloatVector.fromMemorySegment(S, x, o + 4L * L, NATIVE).sub(m1);
      FloatVector d2 = FloatVector.fromMemorySegment(S, x, o + 8L * L, NATIVE).sub(m2), d3 = FloatVector.fromMemorySegment(S, x, o + 12L * L, NATIVE).sub(m3);
      q0 = d0.fma(d0, q0);
      q1 = d1.fma(d1, q1);
      q2 = d2.fma(d2, q2);
      q3 = d3.fma(d3, q3);
    }
    FloatVector r0 = rstd(q0, op), r1 = rstd(q1, op), r2 = rstd(q2, op), r3 = rstd(q3, op);
    long so = (img * op.p + p0) * 4;
    storeStats(op, so, m0, r0);
    storeStats(op, so + 4L * L, m1, r1);
    storeStats(op, so + 8L * L, m2, r2);
    storeStats(op, so + 12L * L, m3, r3);
    long shift = (op.yo - op.xo) * 4; // y[img, ch, q] sits at x's byte offset plus this
    for (int ch = 0; ch < op.c; ch++) {
      long o = (base + ch * op.p) * 4;
      normalise(op, ch, o, o + shift, m0, r0);
      normalise(op, ch, o + 4L * L, o + 4L * L + shift, m1, r1);
      normalise(op, ch, o + 8L * L, o + 8L * L + shift, m2, r2);
      normalise(op, ch, o + 12L * L, o + 12L * L + shift, m3, r3);
    }
  }

  /** Positions [q, q + L) of image img under mask m (the tail of the image), one vector at a time. */
  private static void block1(Op op, long img, long q, VectorMask<Float> m) {
    long base = op.xo + img * op.c * op.p + q, step = op.p * 4;
    FloatVector s = FloatVector.zero(S);
    for (long o = base * 4, end = o + op.c * step; o < end; o += step) s = s.add(FloatVector.fromMemorySegment(S, op.x, o, NATIVE, m));
    FloatVector mu = s.div(op.c), sq = FloatVector.zero(S);
    for (long o = base * 4, end = o + op.c * step; o < end; o += step) {
      FloatVector d = FloatVector.fromMemorySegment(S, op.x, o, NATIVE, m).sub(mu);
      sq = d.fma(d, sq);
    }
    FloatVector rs = rstd(sq, op);
    long so = (img * op.p + q) * 4;
    mu.intoMemorySegment(op.mean, op.mo * 4 + so, NATIVE, m);
    rs.intoMemorySegment(op.rstd, op.ro * 4 + so, NATIVE, m);
    long shift = (op.yo - op.xo) * 4;
    for (int ch = 0; ch < op.c; ch++) {
      long o = (base + ch * op.p) * 4;
      FloatVector v = FloatVector.fromMemorySegment(S, op.x, o, NATIVE, m).sub(mu).mul(rs);
      if (op.w != null) v = v.mul(op.w.getAtIndex(F, op.wo + ch));
      if (op.b != null) v = v.add(op.b.getAtIndex(F, op.bo + ch));
      v.intoMemorySegment(op.y, o + shift, NATIVE, m);
    }
  }

  /** 1/sqrt(Σ(x − mean)²/C + eps) per lane. */
  private static FloatVector rstd(FloatVector centredSquares, Op op) {
    return FloatVector.broadcast(S, 1f).div(centredSquares.div(op.c).add(op.eps).sqrt());
  }

  private static void storeStats(Op op, long byteOffset, FloatVector mu, FloatVector rs) {
    mu.intoMemorySegment(op.mean, op.mo * 4 + byteOffset, NATIVE);
    rs.intoMemorySegment(op.rstd, op.ro * 4 + byteOffset, NATIVE);
  }

  /** One vector of y = ((x − mu)·rs)·w[ch] + b[ch] (multiply, then add, as the other layer norm paths). */
  private static void normalise(Op op, int ch, long xb, long yb, FloatVector mu, FloatVector rs) {
    FloatVector v = FloatVector.fromMemorySegment(S, op.x, xb, NATIVE).sub(mu).mul(rs);
    if (op.w != null) v = v.mul(op.w.getAtIndex(F, op.wo + ch));
    if (op.b != null) v = v.add(op.b.getAtIndex(F, op.bo + ch));
    v.intoMemorySegment(op.y, yb, NATIVE);
  }
}
