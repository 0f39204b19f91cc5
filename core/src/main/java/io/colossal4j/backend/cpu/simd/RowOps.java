package io.colossal4j.backend.cpu.simd;

import static io.colossal4j.backend.cpu.CpuBackend.segment;
import static io.colossal4j.backend.cpu.simd.VMath.S;

import io.colossal4j.backend.cpu.CpuParallel;
import io.colossal4j.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.concurrent.atomic.AtomicLongArray;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;

/**
 * Softmax (and log-softmax) with its backward over the last dim, for f32 tensors whose last dim has unit
 * stride (leading dims any strides). Rows are independent and split over the pool. Sums accumulate in f32
 * vector lanes (error ~ n·2^-24 relative on the normaliser, far inside the tests' tolerance), whose lanes are
 * added in a fixed tree (see {@link #SWAP8}).
 * Layer norm lives in {@link LayerNormKernel}.
 */
final class RowOps {
  private RowOps() {}

  static final ByteOrder NATIVE = ByteOrder.nativeOrder();
  static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;
  static final int L = S.length();

  /** Element offset of row {@code row} (all dims but the last) of t. */
  static long rowOffset(Tensor t, long row) {
    long off = t.offset();
    for (int d = t.rank() - 2; d >= 0; d--) {
      int size = t.size(d);
      off += (row % size) * t.stride(d);
      row /= size;
    }
    return off;
  }

  static long grain(int n) { return Math.max(1, (1 << 14) / Math.max(1, n)); }

  /*
   * The vector at element j of the row at off, masked to the row's n elements. One masked access, so that the
   * method stays under the JIT's size for always inlining (35 bytes of bytecode): a call to it that is not
   * inlined returns its vector boxed, a heap allocation per call (the two-branch form was 61 bytes, and cost
   * the tails of rows whose length is no multiple of the vector length ~400 bytes per row).
   */

  static FloatVector load(MemorySegment s, long off, int j, int n) {
    return FloatVector.fromMemorySegment(S, s, (off + j) * 4, NATIVE, S.indexInRange(j, n));
  }

  static void store(FloatVector v, MemorySegment s, long off, int j, int n) {
    v.intoMemorySegment(s, (off + j) * 4, NATIVE, S.indexInRange(j, n));
  }

  /*
   * Lane sums in a fixed tree (lane i with lane i ^ 8, then ^ 4, ^ 2, ^ 1): exact lane operations, so the result
   * is the same whether or not the JIT has intrinsified them (unlike reduceLanes(ADD)), and unlike a copy to an
   * array they allocate nothing. They are written out where they are used, as
   *   if (L > 8) v = v.add(v.rearrange(SWAP8)); ... if (L > 1) v = v.add(v.rearrange(SWAP1)); sum = v.lane(0)
   * because a helper taking the vector is a call the JIT may decline to inline (past its node budget in a big
   * compiled method, as the softmax and layer-norm row methods are), and then the vector is boxed: a heap
   * allocation per row. RowKernelAllocationTest checks that none is left.
   */
  static final VectorShuffle<Float> SWAP8 = swap(8), SWAP4 = swap(4), SWAP2 = swap(2), SWAP1 = swap(1);

  private static VectorShuffle<Float> swap(int k) { return k < L ? VectorShuffle.fromOp(S, i -> i ^ k) : null; }

  static void softmax(CpuParallel par, Tensor x, boolean log, Tensor out) {
    int n = x.size(-1);
    long rows = x.numel() / Math.max(1, n);
    MemorySegment sx = segment(x), so = segment(out);
    forRows(par, rows, n, r -> softmaxRow(sx, rowOffset(x, r), so, rowOffset(out, r), n, log));
  }

  /** Work on one row. */
  @FunctionalInterface
  interface RowBody { void row(long r); }

  /**
   * Runs body on every row in [0, rows), in chunks of about 64 KiB of row data spread over the pool by
   * {@link CpuParallel#forEachChunk} (the calling thread takes part, so a worker that the busy machine is
   * slow to wake costs little). Rows of one chunk run in order on one thread.
   */
  static void forRows(CpuParallel par, long rows, int n, RowBody body) {
    forRowChunks(par, rows, n, (r0, r1) -> {
      for (long r = r0; r < r1; r++) body.row(r);
    });
  }

  /**
   * Runs body on rows [0, rows) in chunks [r0, r1) of about 64 KiB of row data (at least one row), spread
   * over the pool as {@link #forRows} does. Chunk boundaries depend only on rows and n, never on timing or
   * the thread count.
   */
  static void forRowChunks(CpuParallel par, long rows, int n, CpuParallel.RangeBody body) {
    forChunksOfRows(par, rows, Math.max(1, (1 << 14) / Math.max(1, n)), body);
  }

  /**
   * As {@link #forRowChunks(CpuParallel, long, int, CpuParallel.RangeBody)}, in chunks of {@code chunk} rows.
   * The chunks are cut into one contiguous part per thread, each with its own counter on its own cache line:
   * a thread takes the chunks of its part in order, then helps with the others' (so a thread the busy machine
   * is slow to wake still costs little). Each thread thus streams through one region of memory, and the
   * counters are not passed between the cores for every chunk, as one shared counter was.
   */
  static void forChunksOfRows(CpuParallel par, long rows, long chunk, CpuParallel.RangeBody body) {
    long chunks = (rows + chunk - 1) / chunk;
    int parts = (int) Math.min(par.threads(), chunks);
    if (parts <= 1) {
      for (long c = 0; c < chunks; c++) body.run(c * chunk, Math.min(rows, c * chunk + chunk));
      return;
    }
    AtomicLongArray taken = new AtomicLongArray(parts * PAD);
    par.forEachChunk(parts, p -> {
      for (int i = 0; i < parts; i++) {
        int q = (int) ((p + i) % parts);
        long first = chunks * q / parts, end = chunks * (q + 1) / parts;
        for (long c = first + taken.getAndIncrement(q * PAD); c < end; c = first + taken.getAndIncrement(q * PAD))
          body.run(c * chunk, Math.min(rows, c * chunk + chunk));
      }
    });
  }

  /** Longs between two parts' counters: 128 bytes, so no two share a cache line (or its adjacent-line prefetch). */
  private static final int PAD = 16;

  /**
   * Three passes over the row, which stays in L1 after the first (a 1024-float row is 4 KiB): the max (four
   * independent accumulators: a vector max is a long-latency sequence in Java's NaN-propagating semantics),
   * then e^{x − max} written to the output with its sum ({@link VMath#expNonPositive}: x − max ≤ 0), then
   * the scaling by 1/Σ (or, for log-softmax, x − max − log Σ). A NaN anywhere in the row makes the max NaN
   * and so every output NaN, as in the reference.
   */
  private static void softmaxRow(MemorySegment x, long xo, MemorySegment o, long oo, int n, boolean log) {
    float max = rowMax(x, xo, n);
    double total = expShiftStore(x, xo, o, oo, n, max);
    if (log) shiftRow(x, xo, o, oo, n, max + (float) Math.log(total));
    else scaleRow(o, oo, n, (float) (1 / total));
  }

  /** o = e^{x − shift} over the row; returns Σ o (in f32 lanes, summed in a fixed order). */
  private static float expShiftStore(MemorySegment x, long xo, MemorySegment o, long oo, int n, float shift) {
    FloatVector sum = FloatVector.zero(S);
    int j = 0;
    for (; j + L <= n; j += L) {
      FloatVector e = VMath.expNonPositive(FloatVector.fromMemorySegment(S, x, (xo + j) * 4, NATIVE).sub(shift));
      e.intoMemorySegment(o, (oo + j) * 4, NATIVE);
      sum = sum.add(e);
    }
    if (L > 8) sum = sum.add(sum.rearrange(SWAP8));
    if (L > 4) sum = sum.add(sum.rearrange(SWAP4));
    if (L > 2) sum = sum.add(sum.rearrange(SWAP2));
    if (L > 1) sum = sum.add(sum.rearrange(SWAP1));
    float total = sum.lane(0);
    for (; j < n; j++) { // the last partial vector in scalars (exp within 1 ulp): a second, masked vector exp doubled the method's size
      float e = (float) Math.exp(x.getAtIndex(F, xo + j) - shift);
      o.setAtIndex(F, oo + j, e);
      total += e;
    }
    return total;
  }

  private static float rowMax(MemorySegment x, long xo, int n) {
    FloatVector m0 = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY), m1 = m0, m2 = m0, m3 = m0;
    int j = 0;
    for (; j + 4 * L <= n; j += 4 * L) {
      long b = (xo + j) * 4;
      m0 = m0.max(FloatVector.fromMemorySegment(S, x, b, NATIVE));
      m1 = m1.max(FloatVector.fromMemorySegment(S, x, b + 4L * L, NATIVE));
      m2 = m2.max(FloatVector.fromMemorySegment(S, x, b + 8L * L, NATIVE));
      m3 = m3.max(FloatVector.fromMemorySegment(S, x, b + 12L * L, NATIVE));
    }
    for (; j + L <= n; j += L) m0 = m0.max(FloatVector.fromMemorySegment(S, x, (xo + j) * 4, NATIVE));
    float max = m0.max(m1).max(m2.max(m3)).reduceLanes(VectorOperators.MAX);
    for (; j < n; j++) {
      float v = x.getAtIndex(F, xo + j);
      max = Float.isNaN(v) ? v : Math.max(max, v);
    }
    return max;
  }

  private static void scaleRow(MemorySegment o, long oo, int n, float s) {
    int j = 0;
    for (; j + L <= n; j += L) FloatVector.fromMemorySegment(S, o, (oo + j) * 4, NATIVE).mul(s).intoMemorySegment(o, (oo + j) * 4, NATIVE);
    for (; j < n; j++) o.setAtIndex(F, oo + j, o.getAtIndex(F, oo + j) * s);
  }

  private static void shiftRow(MemorySegment x, long xo, MemorySegment o, long oo, int n, float shift) {
    int j = 0;
    for (; j + L <= n; j += L) FloatVector.fromMemorySegment(S, x, (xo + j) * 4, NATIVE).sub(shift).intoMemorySegment(o, (oo + j) * 4, NATIVE);
    for (; j < n; j++) o.setAtIndex(F, oo + j, x.getAtIndex(F, xo + j) - shift);
  }

  static void softmaxBackward(CpuParallel par, Tensor y, Tensor gy, boolean log, Tensor gx) {
    int n = y.size(-1);
    long rows = y.numel() / Math.max(1, n);
    MemorySegment sy = segment(y), sg = segment(gy), so = segment(gx);
    par.forRange(rows, grain(n), (r0, r1) -> {
      for (long r = r0; r < r1; r++) {
        long yo = rowOffset(y, r), go = rowOffset(gy, r), xo = rowOffset(gx, r);
        FloatVector acc = FloatVector.zero(S);
        for (int j = 0; j < n; j += L) {
          FloatVector g = load(sg, go, j, n);
          acc = log ? acc.add(g, S.indexInRange(j, n)) : acc.add(g.mul(load(sy, yo, j, n)), S.indexInRange(j, n));
        }
        if (L > 8) acc = acc.add(acc.rearrange(SWAP8));
        if (L > 4) acc = acc.add(acc.rearrange(SWAP4));
        if (L > 2) acc = acc.add(acc.rearrange(SWAP2));
        if (L > 1) acc = acc.add(acc.rearrange(SWAP1));
        float dot = acc.lane(0);
        for (int j = 0; j < n; j += L) {
          FloatVector yv = load(sy, yo, j, n), g = load(sg, go, j, n);
          store(log ? VMath.exp(yv).mul(-dot).add(g) : g.sub(dot).mul(yv), so, xo, j, n);
        }
      }
    });
  }
}
