package io.colossal4j.backend.cpu.simd;

import static io.colossal4j.backend.cpu.CpuBackend.segment;
import static io.colossal4j.backend.cpu.simd.VMath.S;

import io.colossal4j.backend.BinaryOp;
import io.colossal4j.backend.UnaryOp;
import io.colossal4j.backend.cpu.CpuParallel;
import io.colossal4j.backend.cpu.ScalarKernels;
import io.colossal4j.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * f32 elementwise kernels over a {@link Layout}: every row is a unit-stride run of the output, and each
 * input is either a unit-stride run (contiguous, row-vector broadcast) or one repeated value (scalar,
 * column-vector broadcast). Rows are split over the pool; the last partial vector of each row runs masked
 * through the same vector code, so every element sees identical math. Cheap ops are switched inline in the
 * loop body; transcendental ones run in {@link ActivationRows}' per-op loops (see there why). Outputs may alias inputs element for
 * element (each lane is read before it is written).
 */
final class Elementwise {
  private Elementwise() {}

  private static final ByteOrder NATIVE = ByteOrder.nativeOrder();
  private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;
  private static final int L = S.length();
  private static final long GRAIN = 1 << 14;   // elements per chunk: 64 KiB of each operand

  /**
   * Runs body over the layout's rows in chunks of about GRAIN elements, split by {@link RowOps#forChunksOfRows}:
   * one contiguous part per thread, the calling thread taking part. Before, {@code CpuParallel.forRange} handed
   * both halves to pool workers (the caller slept), so every call waited for two wake-ups, and a worker the OS
   * woke late held the call up: the in-place add of 4M floats on two threads reached 0.8x PyTorch's.
   */
  private static void forRows(CpuParallel par, Layout lay, CpuParallel.RangeBody body) {
    if (lay.rows() * lay.inner() < 4 * GRAIN) body.run(0, lay.rows());   // ~10 µs of work: not worth a wake-up
    else RowOps.forChunksOfRows(par, lay.rows(), Math.max(1, GRAIN / Math.max(1, lay.inner())), body);
  }

  static boolean supports(UnaryOp op) { return VOps.cheap(op) || ActivationRows.hasRow(op); }

  static boolean supports(BinaryOp op) { return VOps.cheap(op) || ActivationRows.hasRow(op); }

  /** False when the layout is not unit-stride in the innermost dim (caller falls back). */
  static boolean unary(CpuParallel par, UnaryOp op, Tensor x, Tensor out) {
    Layout lay = Layout.of(out.shape().toArray(), out, x);
    if (lay == null || lay.innerStrides()[0] != 1) return false;
    MemorySegment so = segment(out), sx = segment(x);
    boolean xVec = lay.innerStrides()[1] == 1, cheap = VOps.cheap(op);
    forRows(par, lay, (r0, r1) -> {
      Layout.Cursor c = lay.new Cursor(r0);
      for (long r = r0; r < r1; r++, c.next()) {
        int n = lay.rowLength(r);
        if (!xVec) fillRow(so, c.at[0], n, (float) ScalarKernels.unary(op, sx.getAtIndex(F, c.at[1])));
        else if (cheap) cheapUnaryRow(op, sx, c.at[1], so, c.at[0], n);
        else ActivationRows.unary(op, sx, c.at[1], so, c.at[0], n);
      }
    });
    return true;
  }

  private static void fillRow(MemorySegment o, long io, int n, float value) {
    FloatVector v = FloatVector.broadcast(S, value);
    int j = 0;
    for (; j <= n - L; j += L) v.intoMemorySegment(o, (io + j) * 4, NATIVE);
    if (j < n) v.intoMemorySegment(o, (io + j) * 4, NATIVE, S.indexInRange(j, n));
  }

  private static void cheapUnaryRow(UnaryOp op, MemorySegment x, long ix, MemorySegment o, long io, int n) {
    FloatVector one = FloatVector.broadcast(S, 1f);
    for (int j = 0; j < n; j += L) {
      VectorMask<Float> m = S.indexInRange(j, n);
      boolean full = j + L <= n;
      FloatVector v = full ? FloatVector.fromMemorySegment(S, x, (ix + j) * 4, NATIVE) : FloatVector.fromMemorySegment(S, x, (ix + j) * 4, NATIVE, m);
      FloatVector r = switch (op) {
        case NEG -> v.neg();
        case ABS -> v.abs();
        case SQRT -> v.sqrt();
        case RSQRT -> one.div(v.sqrt());
        case RELU -> v.blend(0f, v.compare(VectorOperators.LE, 0f));
        case SIGN -> v.blend(1f, v.compare(VectorOperators.GT, 0f)).blend(-1f, v.lt(0f));
        case RECIPROCAL -> one.div(v);
        case SQUARE -> v.mul(v);
        default -> throw new IllegalStateException(op + " is not a cheap unary op");
      };
      if (full) r.intoMemorySegment(o, (io + j) * 4, NATIVE); else r.intoMemorySegment(o, (io + j) * 4, NATIVE, m);
    }
  }

  static boolean binary(CpuParallel par, BinaryOp op, Tensor a, Tensor b, Tensor out) {
    Layout lay = Layout.of(out.shape().toArray(), out, a, b);
    if (lay == null || lay.innerStrides()[0] != 1) return false;
    MemorySegment so = segment(out), sa = segment(a), sb = segment(b);
    boolean aVec = lay.innerStrides()[1] == 1, bVec = lay.innerStrides()[2] == 1, cheap = VOps.cheap(op);
    if (!cheap && !(aVec && bVec)) return false;
    boolean dense = aVec && bVec && (op == BinaryOp.ADD || op == BinaryOp.SUB || op == BinaryOp.MUL);
    if (dense && sameContiguous(out, a, b) && out.numel() >= 4 * GRAIN) {
      denseRange(par, op, sa, a.offset(), sb, b.offset(), so, out.offset(), out.numel());
      return true;
    }
    forRows(par, lay, (r0, r1) -> {
      Layout.Cursor c = lay.new Cursor(r0);
      for (long r = r0; r < r1; r++, c.next()) {
        int n = lay.rowLength(r);
        if (dense) denseRow(op, sa, c.at[1], sb, c.at[2], so, c.at[0], n);
        else if (cheap) arithRow(op, sa, c.at[1], aVec, sb.getAtIndex(F, c.at[2]), sb, c.at[2], bVec, so, c.at[0], n);
        else ActivationRows.binary(op, sa, c.at[1], sb, c.at[2], so, c.at[0], n);
      }
    });
    return true;
  }

  static boolean binaryScalar(CpuParallel par, BinaryOp op, Tensor a, float s, Tensor out) {
    if (!VOps.cheap(op)) return false;
    Layout lay = Layout.of(out.shape().toArray(), out, a);
    if (lay == null || lay.innerStrides()[0] != 1) return false;
    MemorySegment so = segment(out), sa = segment(a);
    boolean aVec = lay.innerStrides()[1] == 1;
    forRows(par, lay, (r0, r1) -> {
      Layout.Cursor c = lay.new Cursor(r0);
      for (long r = r0; r < r1; r++, c.next()) arithRow(op, sa, c.at[1], aVec, s, so, 0, false, so, c.at[0], lay.rowLength(r));
    });
    return true;
  }

  /**
   * o = a op b over n elements of unit-stride rows, op ADD, SUB or MUL: the optimizers' and residuals' case. One
   * loop per op (the Vector API compiles a lanewise op well only when the op is a constant) with no per-vector
   * operand or mask choice, counted in byte offsets (C2 turns the long-counted loop into a nest whose inner loop it
   * unrolls), the partial last vector through {@link #arithRow}.
   */
  private static void denseRow(BinaryOp op, MemorySegment a, long ia, MemorySegment b, long ib, MemorySegment o, long io, long n) {
    long full = n - n % LS;
    long ao = ia * 4, bo = ib * 4, oo = io * 4, end = full * 4, step = STREAM.vectorByteSize();   // byte offsets
    switch (op) {
      case ADD -> { for (long j = 0; j < end; j += step) load(a, ao + j).add(load(b, bo + j)).intoMemorySegment(o, oo + j, NATIVE); }
      case SUB -> { for (long j = 0; j < end; j += step) load(a, ao + j).sub(load(b, bo + j)).intoMemorySegment(o, oo + j, NATIVE); }
      default -> { for (long j = 0; j < end; j += step) load(a, ao + j).mul(load(b, bo + j)).intoMemorySegment(o, oo + j, NATIVE); }
    }
    if (full < n) arithRow(op, a, ia + full, true, 0f, b, ib + full, true, o, io + full, (int) (n - full));
  }

  /** All of one shape and contiguous: element i of each is at its offset + i. */
  private static boolean sameContiguous(Tensor out, Tensor... ts) {
    if (!out.isContiguous()) return false;
    for (Tensor t : ts) if (!t.isContiguous() || !t.shape().equals(out.shape())) return false;
    return true;
  }

  /** Chunks per thread of {@link #denseRange}: the owners' shares stay contiguous, a late thread's is taken 1/16 at a time. */
  private static final int CHUNKS_PER_THREAD = 16;

  /**
   * o = a op b over n contiguous elements, in {@code threads × 16} chunks through the pool's owned shares: each thread
   * streams one contiguous share, the same one call after call (so an in-place op finds its data in its own core's
   * cache), and takes a late thread's chunks from the far end. The row-layout path (cursors over pseudo-rows, a
   * counter per 64 KiB) ran the in-place add of 4M floats at 0.73x this loop's speed in the same JVM.
   */
  private static void denseRange(CpuParallel par, BinaryOp op, MemorySegment a, long ia, MemorySegment b, long ib, MemorySegment o, long io, long n) {
    int chunks = par.threads() * CHUNKS_PER_THREAD;
    par.forEachChunk(chunks, c -> {
      long from = n * c / chunks, to = n * (c + 1) / chunks;
      denseRow(op, a, ia + from, b, ib + from, o, io + from, to - from);
    });
  }

  /**
   * The streaming loops' vectors: the preferred species, like every other kernel. 256-bit vectors ran a one-thread
   * a += b over 4M floats 5–15% faster on the 2-core Zen 5 machine, but a second float species made the JIT box
   * the vectors of the GEMM micro-kernel in about half of all JVMs (the class comment of {@link SimdKernels}).
   */
  private static final VectorSpecies<Float> STREAM = S;
  private static final int LS = STREAM.length();

  private static FloatVector load(MemorySegment m, long byteOffset) { return FloatVector.fromMemorySegment(STREAM, m, byteOffset, NATIVE); }

  /**
   * One row of a cheap binary op. An operand with {@code vec} false is the single value at its offset
   * ({@code bValue} for b, read by the caller, so a scalar second operand needs no memory).
   */
  private static void arithRow(BinaryOp op, MemorySegment a, long ia, boolean aVec, float bValue, MemorySegment b, long ib, boolean bVec,
                               MemorySegment o, long io, int n) {
    FloatVector as = FloatVector.broadcast(S, aVec ? 0f : a.getAtIndex(F, ia)), bs = FloatVector.broadcast(S, bValue);
    FloatVector zero = FloatVector.zero(S);
    for (int j = 0; j < n; j += L) {
      VectorMask<Float> m = S.indexInRange(j, n);
      boolean full = j + L <= n;
      FloatVector x = !aVec ? as : full ? FloatVector.fromMemorySegment(S, a, (ia + j) * 4, NATIVE) : FloatVector.fromMemorySegment(S, a, (ia + j) * 4, NATIVE, m);
      FloatVector y = !bVec ? bs : full ? FloatVector.fromMemorySegment(S, b, (ib + j) * 4, NATIVE) : FloatVector.fromMemorySegment(S, b, (ib + j) * 4, NATIVE, m);
      FloatVector r = switch (op) {
        case ADD -> x.add(y);
        case SUB -> x.sub(y);
        case MUL -> x.mul(y);
        case DIV -> x.div(y);
        case MAX -> x.max(y);
        case MIN -> x.min(y);
        case EQ -> zero.blend(1f, x.compare(VectorOperators.EQ, y));
        case NE -> zero.blend(1f, x.compare(VectorOperators.NE, y));
        case LT -> zero.blend(1f, x.compare(VectorOperators.LT, y));
        case LE -> zero.blend(1f, x.compare(VectorOperators.LE, y));
        case GT -> zero.blend(1f, x.compare(VectorOperators.GT, y));
        case GE -> zero.blend(1f, x.compare(VectorOperators.GE, y));
        case RELU_BACKWARD -> y.blend(0f, x.compare(VectorOperators.LE, 0f).or(x.test(VectorOperators.IS_NAN)));
        default -> throw new IllegalStateException(op + " is not a cheap binary op");
      };
      if (full) r.intoMemorySegment(o, (io + j) * 4, NATIVE); else r.intoMemorySegment(o, (io + j) * 4, NATIVE, m);
    }
  }
}
