package io.colossal4j.backend.cpu.simd;

import static io.colossal4j.backend.cpu.simd.Gemm.L;
import static io.colossal4j.backend.cpu.simd.Gemm.MR;
import static io.colossal4j.backend.cpu.simd.Gemm.NR;
import static io.colossal4j.backend.cpu.simd.Gemm.S;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;

/**
 * The GEMM micro-kernel: an MR×NR (8 × 2 vectors) tile of C held in 16 vector registers, updated by one
 * rank-1 product per k step (2 loads of the packed B sliver, 8 broadcasts of the packed A sliver, 16 FMAs).
 * With 32 vector registers (AVX-512) the 16 accumulators, 2 B vectors and one broadcast fit without spills;
 * 16 independent FMA chains cover the FMA latency (4 cycles × 2 pipes). Written out by hand because the
 * JIT keeps only straight-line vector locals in registers.
 */
final class MicroKernel {
  private MicroKernel() {}

  private static final ByteOrder NATIVE = ByteOrder.nativeOrder();

  /** C[r, 0..NR) (=|+=) tile r, for the 8 rows starting at element offset cOff with row stride cRs. */
  static void kernel(float[] ap, int ai, float[] bp, int bi, int kc, MemorySegment c, long cOff, long cRs, boolean add) {
    FloatVector z = FloatVector.zero(S);
    FloatVector c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z;
    FloatVector c40 = z, c41 = z, c50 = z, c51 = z, c60 = z, c61 = z, c70 = z, c71 = z;
    for (int p = 0; p < kc; p++, ai += MR, bi += NR) {
      FloatVector b0 = FloatVector.fromArray(S, bp, bi), b1 = FloatVector.fromArray(S, bp, bi + L);
      FloatVector a = FloatVector.broadcast(S, ap[ai]);
      c00 = a.fma(b0, c00); c01 = a.fma(b1, c01);
      a = FloatVector.broadcast(S, ap[ai + 1]);
      c10 = a.fma(b0, c10); c11 = a.fma(b1, c11);
      a = FloatVector.broadcast(S, ap[ai + 2]);
      c20 = a.fma(b0, c20); c21 = a.fma(b1, c21);
      a = FloatVector.broadcast(S, ap[ai + 3]);
      c30 = a.fma(b0, c30); c31 = a.fma(b1, c31);
      a = FloatVector.broadcast(S, ap[ai + 4]);
      c40 = a.fma(b0, c40); c41 = a.fma(b1, c41);
      a = FloatVector.broadcast(S, ap[ai + 5]);
      c50 = a.fma(b0, c50); c51 = a.fma(b1, c51);
      a = FloatVector.broadcast(S, ap[ai + 6]);
      c60 = a.fma(b0, c60); c61 = a.fma(b1, c61);
      a = FloatVector.broadcast(S, ap[ai + 7]);
      c70 = a.fma(b0, c70); c71 = a.fma(b1, c71);
    }
    // Stores are written out rather than factored into a helper: a helper taking vectors that the JIT
    // declines to inline would box all 16 accumulators (measured 10x slower).
    long r0 = cOff * 4, r1 = r0 + cRs * 4, r2 = r1 + cRs * 4, r3 = r2 + cRs * 4;
    long r4 = r3 + cRs * 4, r5 = r4 + cRs * 4, r6 = r5 + cRs * 4, r7 = r6 + cRs * 4;
    long h = L * 4L;
    if (add) {
      c00 = c00.add(FloatVector.fromMemorySegment(S, c, r0, NATIVE)); c01 = c01.add(FloatVector.fromMemorySegment(S, c, r0 + h, NATIVE));
      c10 = c10.add(FloatVector.fromMemorySegment(S, c, r1, NATIVE)); c11 = c11.add(FloatVector.fromMemorySegment(S, c, r1 + h, NATIVE));
      c20 = c20.add(FloatVector.fromMemorySegment(S, c, r2, NATIVE)); c21 = c21.add(FloatVector.fromMemorySegment(S, c, r2 + h, NATIVE));
      c30 = c30.add(FloatVector.fromMemorySegment(S, c, r3, NATIVE)); c31 = c31.add(FloatVector.fromMemorySegment(S, c, r3 + h, NATIVE));
      c40 = c40.add(FloatVector.fromMemorySegment(S, c, r4, NATIVE)); c41 = c41.add(FloatVector.fromMemorySegment(S, c, r4 + h, NATIVE));
      c50 = c50.add(FloatVector.fromMemorySegment(S, c, r5, NATIVE)); c51 = c51.add(FloatVector.fromMemorySegment(S, c, r5 + h, NATIVE));
      c60 = c60.add(FloatVector.fromMemorySegment(S, c, r6, NATIVE)); c61 = c61.add(FloatVector.fromMemorySegment(S, c, r6 + h, NATIVE));
      c70 = c70.add(FloatVector.fromMemorySegment(S, c, r7, NATIVE)); c71 = c71.add(FloatVector.fromMemorySegment(S, c, r7 + h, NATIVE));
    }
    c00.intoMemorySegment(c, r0, NATIVE); c01.intoMemorySegment(c, r0 + h, NATIVE);
    c10.intoMemorySegment(c, r1, NATIVE); c11.intoMemorySegment(c, r1 + h, NATIVE);
    c20.intoMemorySegment(c, r2, NATIVE); c21.intoMemorySegment(c, r2 + h, NATIVE);
    c30.intoMemorySegment(c, r3, NATIVE); c31.intoMemorySegment(c, r3 + h, NATIVE);
    c40.intoMemorySegment(c, r4, NATIVE); c41.intoMemorySegment(c, r4 + h, NATIVE);
    c50.intoMemorySegment(c, r5, NATIVE); c51.intoMemorySegment(c, r5 + h, NATIVE);
    c60.intoMemorySegment(c, r6, NATIVE); c61.intoMemorySegment(c, r6 + h, NATIVE);
    c70.intoMemorySegment(c, r7, NATIVE); c71.intoMemorySegment(c, r7 + h, NATIVE);
  }

  /**
   * An edge tile: rows [0, h) and columns [0, w) of an MR×NR tile (h ≤ MR, 0 < w ≤ NR), accumulated in
   * registers like {@link #kernel}; only the valid rows are stored, with a lane mask for the columns. A tile
   * at most one vector wide computes only that vector (half the FMAs). The packed panels are zero beyond
   * the valid rows and columns, so the extra lanes compute zeros that are never stored.
   */
  static void edge(float[] ap, int ai, float[] bp, int bi, int kc, MemorySegment c, long cOff, long cRs, boolean add, int h, int w) {
    if (w <= L) narrow(ap, ai, bp, bi, kc, c, cOff, cRs, add, h, S.indexInRange(0, w));
    else wide(ap, ai, bp, bi, kc, c, cOff, cRs, add, h, S.indexInRange(0, w - L));
  }

  /** Columns [0, L) of the tile under mask m: 8 accumulators. */
  private static void narrow(float[] ap, int ai, float[] bp, int bi, int kc, MemorySegment c, long cOff, long cRs, boolean add, int h,
                             VectorMask<Float> m) {
    FloatVector z = FloatVector.zero(S);
    FloatVector c0 = z, c1 = z, c2 = z, c3 = z, c4 = z, c5 = z, c6 = z, c7 = z;
    for (int p = 0; p < kc; p++, ai += MR, bi += NR) {
      FloatVector b0 = FloatVector.fromArray(S, bp, bi);
      c0 = FloatVector.broadcast(S, ap[ai]).fma(b0, c0);
      c1 = FloatVector.broadcast(S, ap[ai + 1]).fma(b0, c1);
      c2 = FloatVector.broadcast(S, ap[ai + 2]).fma(b0, c2);
      c3 = FloatVector.broadcast(S, ap[ai + 3]).fma(b0, c3);
      c4 = FloatVector.broadcast(S, ap[ai + 4]).fma(b0, c4);
      c5 = FloatVector.broadcast(S, ap[ai + 5]).fma(b0, c5);
      c6 = FloatVector.broadcast(S, ap[ai + 6]).fma(b0, c6);
      c7 = FloatVector.broadcast(S, ap[ai + 7]).fma(b0, c7);
    }
    store(c0, c, cOff + 0 * cRs, m, add);
    if (h > 1) store(c1, c, cOff + 1 * cRs, m, add);
    if (h > 2) store(c2, c, cOff + 2 * cRs, m, add);
    if (h > 3) store(c3, c, cOff + 3 * cRs, m, add);
    if (h > 4) store(c4, c, cOff + 4 * cRs, m, add);
    if (h > 5) store(c5, c, cOff + 5 * cRs, m, add);
    if (h > 6) store(c6, c, cOff + 6 * cRs, m, add);
    if (h > 7) store(c7, c, cOff + 7 * cRs, m, add);
  }

  /** Columns [0, L) in full and [L, 2L) under mask m1: 16 accumulators, as {@link #kernel}. */
  private static void wide(float[] ap, int ai, float[] bp, int bi, int kc, MemorySegment c, long cOff, long cRs, boolean add, int h,
                           VectorMask<Float> m1) {
    VectorMask<Float> all = S.maskAll(true);
    FloatVector z = FloatVector.zero(S);
    FloatVector c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z;
    FloatVector c40 = z, c41 = z, c50 = z, c51 = z, c60 = z, c61 = z, c70 = z, c71 = z;
    for (int p = 0; p < kc; p++, ai += MR, bi += NR) {
      FloatVector b0 = FloatVector.fromArray(S, bp, bi), b1 = FloatVector.fromArray(S, bp, bi + L);
      FloatVector a = FloatVector.broadcast(S, ap[ai]);
      c00 = a.fma(b0, c00); c01 = a.fma(b1, c01);
      a = FloatVector.broadcast(S, ap[ai + 1]);
      c10 = a.fma(b0, c10); c11 = a.fma(b1, c11);
      a = FloatVector.broadcast(S, ap[ai + 2]);
      c20 = a.fma(b0, c20); c21 = a.fma(b1, c21);
      a = FloatVector.broadcast(S, ap[ai + 3]);
      c30 = a.fma(b0, c30); c31 = a.fma(b1, c31);
      a = FloatVector.broadcast(S, ap[ai + 4]);
      c40 = a.fma(b0, c40); c41 = a.fma(b1, c41);
      a = FloatVector.broadcast(S, ap[ai + 5]);
      c50 = a.fma(b0, c50); c51 = a.fma(b1, c51);
      a = FloatVector.broadcast(S, ap[ai + 6]);
      c60 = a.fma(b0, c60); c61 = a.fma(b1, c61);
      a = FloatVector.broadcast(S, ap[ai + 7]);
      c70 = a.fma(b0, c70); c71 = a.fma(b1, c71);
    }
    long h1 = L;
    { store(c00, c, cOff + 0 * cRs, all, add); store(c01, c, cOff + 0 * cRs + h1, m1, add); }
    if (h > 1) { store(c10, c, cOff + 1 * cRs, all, add); store(c11, c, cOff + 1 * cRs + h1, m1, add); }
    if (h > 2) { store(c20, c, cOff + 2 * cRs, all, add); store(c21, c, cOff + 2 * cRs + h1, m1, add); }
    if (h > 3) { store(c30, c, cOff + 3 * cRs, all, add); store(c31, c, cOff + 3 * cRs + h1, m1, add); }
    if (h > 4) { store(c40, c, cOff + 4 * cRs, all, add); store(c41, c, cOff + 4 * cRs + h1, m1, add); }
    if (h > 5) { store(c50, c, cOff + 5 * cRs, all, add); store(c51, c, cOff + 5 * cRs + h1, m1, add); }
    if (h > 6) { store(c60, c, cOff + 6 * cRs, all, add); store(c61, c, cOff + 6 * cRs + h1, m1, add); }
    if (h > 7) { store(c70, c, cOff + 7 * cRs, all, add); store(c71, c, cOff + 7 * cRs + h1, m1, add); }
  }

  /** c[off..] (=|+=) v under mask m. Small enough that the JIT always inlines it, so v stays in a register. */
  private static void store(FloatVector v, MemorySegment c, long off, VectorMask<Float> m, boolean add) {
    if (add) v = v.add(FloatVector.fromMemorySegment(S, c, off * 4, NATIVE, m));
    v.intoMemorySegment(c, off * 4, NATIVE, m);
  }
}
