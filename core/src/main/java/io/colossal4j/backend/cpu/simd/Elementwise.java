package io.colossal4j.backend.cpu.simd;

import static io.colossal4j.backend.cpu.CpuBackend.segment;
import static io.colossal4j.backend.cpu.simd.VMath.S;

import io.colossal4j.backend.BinaryOp;
import io.colossal4j.backend.UnaryOp;
import io.colossal4j.backend.cpu.CpuParallel;
import io.colossal4j.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;

/**
 * f32 elementwise kernels over a {@link Layout}: every row is a unit-stride run of the output, and each
 * input is either a unit-stride run (contiguous, row-vector broadcast) or one repeated value (scalar,
 * column-vector broadcast). Rows are split over the pool; the last partial vector of each row runs masked
 * through the same vector code, so every element sees identical math. Outputs may alias inputs element for
 * element (each lane is read before it is written).
 */
final class Elementwise {
  private Elementwise() {}

  private static final ByteOrder NATIVE = ByteOrder.nativeOrder();
  private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;
  private static final int L = S.length();
  private static final long GRAIN = 1 << 15;

  /** False when the layout is not unit-stride in the innermost dim (caller falls back). */
  static boolean unary(CpuParallel par, UnaryOp op, Tensor x, Tensor out) {
    Layout lay = Layout.of(out.shape().toArray(), out, x);
    if (lay == null || lay.innerStrides()[0] != 1) return false;
    MemorySegment so = segment(out), sx = segment(x);
    boolean xVec = lay.innerStrides()[1] == 1;
    par.forRange(lay.rows(), Math.max(1, GRAIN / Math.max(1, lay.inner())), (r0, r1) -> {
      Layout.Cursor c = lay.new Cursor(r0);
      for (long r = r0; r < r1; r++, c.next()) unaryRow(op, sx, c.at[1], xVec, so, c.at[0], lay.rowLength(r));
    });
    return true;
  }

  private static void unaryRow(UnaryOp op, MemorySegment x, long ix, boolean xVec, MemorySegment o, long io, int n) {
    FloatVector xs = xVec ? null : FloatVector.broadcast(S, x.getAtIndex(F, ix));
    int j = 0;
    for (; j <= n - L; j += L) {
      FloatVector v = xVec ? FloatVector.fromMemorySegment(S, x, (ix + j) * 4, NATIVE) : xs;
      VOps.unary(op, v).intoMemorySegment(o, (io + j) * 4, NATIVE);
    }
    if (j < n) {
      VectorMask<Float> m = S.indexInRange(j, n);
      FloatVector v = xVec ? FloatVector.fromMemorySegment(S, x, (ix + j) * 4, NATIVE, m) : xs;
      VOps.unary(op, v).intoMemorySegment(o, (io + j) * 4, NATIVE, m);
    }
  }

  static boolean binary(CpuParallel par, BinaryOp op, Tensor a, Tensor b, Tensor out) {
    Layout lay = Layout.of(out.shape().toArray(), out, a, b);
    if (lay == null || lay.innerStrides()[0] != 1) return false;
    MemorySegment so = segment(out), sa = segment(a), sb = segment(b);
    boolean aVec = lay.innerStrides()[1] == 1, bVec = lay.innerStrides()[2] == 1;
    par.forRange(lay.rows(), Math.max(1, GRAIN / Math.max(1, lay.inner())), (r0, r1) -> {
      Layout.Cursor c = lay.new Cursor(r0);
      for (long r = r0; r < r1; r++, c.next())
        binaryRow(op, sa, c.at[1], aVec, sb, c.at[2], bVec, Float.NaN, so, c.at[0], lay.rowLength(r));
    });
    return true;
  }

  static boolean binaryScalar(CpuParallel par, BinaryOp op, Tensor a, float s, Tensor out) {
    Layout lay = Layout.of(out.shape().toArray(), out, a);
    if (lay == null || lay.innerStrides()[0] != 1) return false;
    MemorySegment so = segment(out), sa = segment(a);
    boolean aVec = lay.innerStrides()[1] == 1;
    par.forRange(lay.rows(), Math.max(1, GRAIN / Math.max(1, lay.inner())), (r0, r1) -> {
      Layout.Cursor c = lay.new Cursor(r0);
      for (long r = r0; r < r1; r++, c.next()) binaryRow(op, sa, c.at[1], aVec, null, 0, false, s, so, c.at[0], lay.rowLength(r));
    });
    return true;
  }

  /** One row; b == null means the constant {@code s} instead of a second operand. */
  private static void binaryRow(BinaryOp op, MemorySegment a, long ia, boolean aVec, MemorySegment b, long ib, boolean bVec,
                                float s, MemorySegment o, long io, int n) {
    FloatVector as = aVec ? null : FloatVector.broadcast(S, a.getAtIndex(F, ia));
    FloatVector bs = bVec ? null : FloatVector.broadcast(S, b == null ? s : b.getAtIndex(F, ib));
    int j = 0;
    for (; j <= n - L; j += L) {
      FloatVector va = aVec ? FloatVector.fromMemorySegment(S, a, (ia + j) * 4, NATIVE) : as;
      FloatVector vb = bVec ? FloatVector.fromMemorySegment(S, b, (ib + j) * 4, NATIVE) : bs;
      VOps.binary(op, va, vb).intoMemorySegment(o, (io + j) * 4, NATIVE);
    }
    if (j < n) {
      VectorMask<Float> m = S.indexInRange(j, n);
      FloatVector va = aVec ? FloatVector.fromMemorySegment(S, a, (ia + j) * 4, NATIVE, m) : as;
      FloatVector vb = bVec ? FloatVector.fromMemorySegment(S, b, (ib + j) * 4, NATIVE, m) : bs;
      VOps.binary(op, va, vb).intoMemorySegment(o, (io + j) * 4, NATIVE, m);
    }
  }
}
