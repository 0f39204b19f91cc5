package io.colossal4j.backend.cpu.simd;

import static io.colossal4j.backend.cpu.CpuBackend.segment;
import static io.colossal4j.backend.cpu.simd.VMath.S;

import io.colossal4j.backend.cpu.CpuParallel;
import io.colossal4j.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

/**
 * Softmax (and log-softmax) with its backward over the last dim, for f32 tensors whose last dim has unit
 * stride (leading dims any strides). Rows are independent and split over the pool. Sums accumulate in f32
 * vector lanes (error ~ n·2^-24 relative on the normaliser, far inside the tests' tolerance).
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

  static FloatVector load(MemorySegment s, long off, int j, int n) {
    return j + L <= n ? FloatVector.fromMemorySegment(S, s, (off + j) * 4, NATIVE)
        : FloatVector.fromMemorySegment(S, s, (off + j) * 4, NATIVE, S.indexInRange(j, n));
  }

  static void store(FloatVector v, MemorySegment s, long off, int j, int n) {
    if (j + L <= n) v.intoMemorySegment(s, (off + j) * 4, NATIVE);
    else v.intoMemorySegment(s, (off + j) * 4, NATIVE, S.indexInRange(j, n));
  }

  static void softmax(CpuParallel par, Tensor x, boolean log, Tensor out) {
    int n = x.size(-1);
    long rows = x.numel() / Math.max(1, n);
    MemorySegment sx = segment(x), so = segment(out);
    par.forRange(rows, grain(n), (r0, r1) -> {
      for (long r = r0; r < r1; r++) softmaxRow(sx, rowOffset(x, r), so, rowOffset(out, r), n, log);
    });
  }

  /**
   * Three passes over the row: the max (exact, so the vector tail is a plain scalar loop), then e^{x − max}
   * and its sum chunk by chunk through {@link ChunkPasses#expShiftSum} (padding lanes hold −inf, whose
   * exponential is 0), then the scaling (or, for log-softmax, x − max − log Σ). Kept as separate small
   * methods so that each compiles within the JIT's inlining budget (see {@link ChunkPasses}).
   */
  private static void softmaxRow(MemorySegment x, long xo, MemorySegment o, long oo, int n, boolean log) {
    float max = rowMax(x, xo, n);
    float[] buf = new float[Math.min(n + L, CHUNK)];
    double total = 0;
    for (int c = 0; c < n; c += CHUNK) {
      int len = Math.min(CHUNK, n - c), lv = (len + L - 1) / L * L;
      MemorySegment.copy(x, F, (xo + c) * 4, buf, 0, len);
      java.util.Arrays.fill(buf, len, lv, Float.NEGATIVE_INFINITY);
      total += ChunkPasses.expShiftSum(buf, max, lv);
      if (!log && n > CHUNK) MemorySegment.copy(buf, 0, o, F, (oo + c) * 4, len);
    }
    if (log) shiftRow(x, xo, o, oo, n, max + (float) Math.log(total));
    else if (n <= CHUNK) scaledCopy(buf, o, oo, n, (float) (1 / total)); // the whole row is still in buf
    else scaleRow(o, oo, n, (float) (1 / total));
  }

  /** o[oo..oo+n) = buf[0..n)·s. */
  private static void scaledCopy(float[] buf, MemorySegment o, long oo, int n, float s) {
    int j = 0;
    for (; j + L <= n; j += L) FloatVector.fromArray(S, buf, j).mul(s).intoMemorySegment(o, (oo + j) * 4, NATIVE);
    for (; j < n; j++) o.setAtIndex(F, oo + j, buf[j] * s);
  }

  private static final int CHUNK = 4096;

  private static float rowMax(MemorySegment x, long xo, int n) {
    FloatVector mx = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
    int j = 0;
    for (; j + L <= n; j += L) mx = mx.max(FloatVector.fromMemorySegment(S, x, (xo + j) * 4, NATIVE));
    float max = mx.reduceLanes(VectorOperators.MAX);
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
        float dot = VMath.sumLanes(acc);
        for (int j = 0; j < n; j += L) {
          FloatVector yv = load(sy, yo, j, n), g = load(sg, go, j, n);
          store(log ? VMath.exp(yv).mul(-dot).add(g) : g.sub(dot).mul(yv), so, xo, j, n);
        }
      }
    });
  }
}
