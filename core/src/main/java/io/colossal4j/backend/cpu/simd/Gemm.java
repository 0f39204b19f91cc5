package io.colossal4j.backend.cpu.simd;

import io.colossal4j.backend.cpu.CpuParallel;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * Single-precision GEMM, C = A·B (+ C), in the Goto/BLIS structure: for each NC×KC block of B, pack it
 * into NR-wide column slivers; for each MC×KC block of A, pack it into MR-tall row slivers; then a
 * register-blocked micro-kernel computes each MR×NR tile of C with 2·MR vector FMAs per k step.
 *
 * <p>Geometry: A is m×k with element strides (am, ak), B is k×n with (bk, bn), C is m×n with (cm, 1);
 * any stride pattern of A and B is accepted (packing reads transposed operands directly, so a transposed
 * view is never copied first). Blocking for this machine's caches (48 KiB L1d, 1 MiB L2 per core):
 * one KC×NR sliver of B (256×32 floats = 32 KiB) stays in L1 while the micro-kernel streams MR×KC slivers
 * of A from a 144×256 block (144 KiB) held in L2; the packed B block (≤ 4 MiB) lives in L3.
 *
 * <p>Threading: the packed B block is shared read-only; tasks (row blocks of C, split further along N when
 * there are fewer row blocks than threads) each pack their own A block into a task-local buffer.
 * Tiles at the right/bottom edges are computed in registers on the zero-padded panels and stored under a
 * lane mask, rows beyond the edge skipped ({@link MicroKernel#edge}). Thread-safe: the packing buffers belong to the calling and worker threads
 * ({@link Scratch}); a thread runs one GEMM at a time.
 */
final class Gemm {
  private Gemm() {}

  static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
  static final int L = S.length();
  static final int MR = 8;
  /**
   * The first MR lanes: one k step of a transposed A's row group, moved with one masked load and store. Only the
   * preferred species is used (not an MR-lane one): a second float species polluted the JDK's shared type profiles
   * and made the JIT box the vectors (see {@link MicroKernel}).
   */
  private static final VectorMask<Float> FIRST_MR = S.indexInRange(0, MR);
  static final int NR = 2 * L;
  static final int KC = 256;
  static final int MC = 144;
  static final int NC = 4096;
  private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;
  private static final ByteOrder NATIVE = ByteOrder.nativeOrder();

  /**
   * One operand: element (r, c) lives at {@code off + row(r) + col(c)} in a segment of f32, where row(r) is
   * {@code r·rs} or, when a row table is given, {@code rowAt[r]} (likewise for columns). Tables let a
   * convolution present its input as the im2col matrix without building it: row k = (channel, tap) of the
   * matrix starts at that tap's shifted position in a padded image.
   */
  record Mat(MemorySegment seg, long off, long rs, long cs, long[] rowAt, long[] colAt) {
    Mat(MemorySegment seg, long off, long rs, long cs) { this(seg, off, rs, cs, null, null); }

    long row(int r) { return rowAt == null ? r * rs : rowAt[r]; }

    long col(int c) { return colAt == null ? c * cs : colAt[c]; }

    /** Unit column stride without a column table: rows are contiguous runs. */
    boolean rowsContiguous() { return colAt == null && cs == 1; }

    Mat transpose() { return new Mat(seg, off, cs, rs, colAt, rowAt); }
  }

  /** C[m×n] (=|+=) A[m×k]·B[k×n]; C must have unit column stride. */
  static void gemm(CpuParallel par, int m, int n, int k, Mat a, Mat b, Mat c, boolean accumulate) {
    if (!c.rowsContiguous() || c.rowAt() != null) throw new IllegalArgumentException("gemm: C needs unit column stride and no row table");
    if (m == 0 || n == 0) return;
    if (k == 0) {
      if (!accumulate) zero(c, m, n);
      return;
    }
    int threads = par == null ? 1 : par.threads();
    for (int jc = 0; jc < n; jc += NC) {
      int nc = Math.min(NC, n - jc);
      int slivers = (nc + NR - 1) / NR;
      float[] bp = Scratch.get().packedB(slivers * NR * Math.min(KC, k));
      for (int pc = 0; pc < k; pc += KC) {
        int kc = Math.min(KC, k - pc);
        boolean add = accumulate || pc > 0;
        int jc0 = jc, pc0 = pc;
        run(par, slivers, Math.max(1, 64 * 1024 / (kc * NR)), (s0, s1) -> {
          for (long s = s0; s < s1; s++) packB(b, pc0, kc, jc0 + (int) s * NR, Math.min(NR, n - jc0 - (int) s * NR), bp, (int) s * NR * kc);
        });
        int rowBlocks = (m + MC - 1) / MC;
        int nParts = rowBlocks >= threads ? 1 : Math.min(slivers, (threads + rowBlocks - 1) / rowBlocks);
        run(par, (long) rowBlocks * nParts, 1, (t0, t1) -> {
          Scratch own = Scratch.get();
          float[] ap = own.packedA(MC * kc);
          for (long t = t0; t < t1; t++) {
            int ic = (int) (t / nParts) * MC, part = (int) (t % nParts);
            int mc = Math.min(MC, m - ic);
            packA(a, ic, mc, pc0, kc, ap);
            int s0 = slivers * part / nParts, s1 = slivers * (part + 1) / nParts;
            macro(ap, bp, 0, NR * kc, mc, kc, s0, s1, nc, c, ic, jc0, add);
          }
        });
      }
    }
  }

  /**
   * Packing buffers kept per thread, so that the many small GEMMs of a batched matmul or of attention do not
   * allocate (and zero) fresh panels on every call. Contents are scratch: every packed element is written
   * before it is read. Sizes are bounded by the blocking (≤ 4 MiB for B, 144 KiB for A per thread).
   */
  private static final class Scratch {
    private static final ThreadLocal<Scratch> PER_THREAD = ThreadLocal.withInitial(Scratch::new);
    private float[] b = new float[0], a = new float[0], rows = new float[0];

    static Scratch get() { return PER_THREAD.get(); }

    float[] packedB(int n) { return b.length >= n ? b : (b = new float[n]); }

    float[] packedA(int n) { return a.length >= n ? a : (a = new float[n]); }

    /** MR rows of A on their way into a packed sliver ({@link #packRows}). */
    float[] rows(int n) { return rows.length >= n ? rows : (rows = new float[n]); }
  }

  /**
   * Runs body over [0, n) in chunks of {@code grain} units handed out from a shared counter
   * ({@link CpuParallel#forEachChunk}: on a busy machine, chunks a descheduled worker has not started are taken
   * by the threads that run); one chunk's worth runs on the caller without a dispatch.
   */
  private static void run(CpuParallel par, long n, long grain, CpuParallel.RangeBody body) {
    if (par == null || n <= grain) { body.run(0, n); return; }
    par.forEachChunk((n + grain - 1) / grain, c -> body.run(c * grain, Math.min(n, c * grain + grain)));
  }

  /** Packs B[pc.., j0..j0+w) into one sliver at dst[d..]: layout [kc][NR], columns ≥ w zero. */
  static void packB(Mat b, int pc, int kc, int j0, int w, float[] dst, int d) {
    MemorySegment seg = b.seg();
    if (b.rowsContiguous() && w == NR) {
      for (int p = 0; p < kc; p++) {
        long src = (b.off() + b.row(pc + p) + j0) * 4;
        for (int v = 0; v < NR; v += L) FloatVector.fromMemorySegment(S, seg, src + v * 4L, NATIVE).intoArray(dst, d + p * NR + v);
      }
      return;
    }
    boolean affineRows = b.rowAt() == null;
    for (int j = 0; j < NR; j++) {
      if (j >= w) { for (int p = 0; p < kc; p++) dst[d + p * NR + j] = 0; continue; }
      long base = b.off() + b.col(j0 + j);
      if (affineRows) {
        long start = base + b.row(pc), rs = b.rs();
        for (int p = 0; p < kc; p++) dst[d + p * NR + j] = seg.getAtIndex(F, start + p * rs);
      } else {
        for (int p = 0; p < kc; p++) dst[d + p * NR + j] = seg.getAtIndex(F, base + b.row(pc + p));
      }
    }
  }

  /** Packs A[i0..i0+mc, pc..pc+kc) into MR-tall slivers: sliver r at [r*MR*kc], layout [kc][MR], rows ≥ mc zero. */
  static void packA(Mat a, int i0, int mc, int pc, int kc, float[] dst) {
    MemorySegment seg = a.seg();
    for (int r0 = 0; r0 < mc; r0 += MR) {
      int d = r0 * kc;
      if (L >= MR && a.rowAt() == null && a.rs() == 1 && a.colAt() == null && r0 + MR <= mc) { // transposed A: one k's MR rows are adjacent
        long base = a.off() + i0 + r0 + (long) pc * a.cs();
        for (int p = 0; p < kc; p++) FloatVector.fromMemorySegment(S, seg, (base + p * a.cs()) * 4, NATIVE, FIRST_MR).intoArray(dst, d + p * MR, FIRST_MR);
        continue;
      }
      if (a.colAt() == null && a.cs() == 1) { // row-major A: each row's run copied in bulk, then transposed in arrays
        packRows(a, i0 + r0, Math.min(MR, mc - r0), pc, kc, dst, d);
        continue;
      }
      for (int r = 0; r < MR; r++) {
        if (r0 + r >= mc) { for (int p = 0; p < kc; p++) dst[d + p * MR + r] = 0; continue; }
        long base = a.off() + a.row(i0 + r0 + r);
        if (a.colAt() == null) {
          long start = base + (long) pc * a.cs(), cs = a.cs();
          for (int p = 0; p < kc; p++) dst[d + p * MR + r] = seg.getAtIndex(F, start + p * cs);
        } else {
          for (int p = 0; p < kc; p++) dst[d + p * MR + r] = seg.getAtIndex(F, base + a.col(pc + p));
        }
      }
    }
  }

  /**
   * One MR-row sliver of a row-major A (rows i..i+h, h ≤ MR; rows ≥ h zero): the h runs A[i + r, pc..pc+kc) are
   * copied into a thread-local buffer with one bulk copy each, and the [MR][kc] → [kc][MR] transpose then reads
   * and writes arrays only (per-element segment reads cost a liveness and bounds check each).
   */
  private static void packRows(Mat a, int i, int h, int pc, int kc, float[] dst, int d) {
    float[] rows = Scratch.get().rows(MR * kc);
    for (int r = 0; r < h; r++) MemorySegment.copy(a.seg(), F, (a.off() + a.row(i + r) + pc) * 4, rows, r * kc, kc);
    if (h < MR) java.util.Arrays.fill(rows, h * kc, MR * kc, 0f);
    int p = 0;
    if (TRANSPOSE_BY_VECTORS) for (; p + L <= kc; p += L) transposeBlock(rows, kc, p, dst, d + p * MR);
    for (; p < kc; p++) {
      for (int r = 0; r < MR; r++) dst[d + p * MR + r] = rows[r * kc + p];
    }
  }

  /**
   * The 8 × L block rows[r·kc + p0 + j] (r < 8, j < L) to dst[at + j·8 + r] in registers: three rounds of two-vector
   * interleaves (pairs of rows, then pairs of pairs, then fours), 3·L/2 lane permutes for 8·L elements where the
   * scalar loop moved each element on its own (row-major A's packing was the largest single frame in a profile of the
   * Winograd weight gradient). After round k a vector holds 2^k rows' values for L/2^k consecutive columns; the last round's vectors
   * hold L/8 whole columns each, which is dst's layout.
   */
  private static void transposeBlock(float[] rows, int kc, int p0, float[] dst, int at) {
    FloatVector r0 = FloatVector.fromArray(S, rows, p0), r1 = FloatVector.fromArray(S, rows, kc + p0);
    FloatVector r2 = FloatVector.fromArray(S, rows, 2 * kc + p0), r3 = FloatVector.fromArray(S, rows, 3 * kc + p0);
    FloatVector r4 = FloatVector.fromArray(S, rows, 4 * kc + p0), r5 = FloatVector.fromArray(S, rows, 5 * kc + p0);
    FloatVector r6 = FloatVector.fromArray(S, rows, 6 * kc + p0), r7 = FloatVector.fromArray(S, rows, 7 * kc + p0);
    for (int c = 0; c < 2; c++) {   // columns [c·L/2, (c + 1)·L/2)
      VectorShuffle<Float> z1 = c == 0 ? ZIP1_LO : ZIP1_HI;   // constants once the two-trip loops are unrolled
      FloatVector t01 = r0.rearrange(z1, r1), t23 = r2.rearrange(z1, r3), t45 = r4.rearrange(z1, r5), t67 = r6.rearrange(z1, r7);
      for (int e = 0; e < 2; e++) {   // columns [c·L/2 + e·L/4, ... + L/4)
        VectorShuffle<Float> z2 = e == 0 ? ZIP2_LO : ZIP2_HI;
        FloatVector u03 = t01.rearrange(z2, t23), u47 = t45.rearrange(z2, t67);
        int col = c * L / 2 + e * L / 4;
        u03.rearrange(ZIP4_LO, u47).intoArray(dst, at + col * MR);
        u03.rearrange(ZIP4_HI, u47).intoArray(dst, at + (col + L / 8) * MR);
      }
    }
  }

  /** Whether packRows transposes in registers: 8 rows (MR) and at least 8 lanes, so a column of 8 fits a vector. */
  private static final boolean TRANSPOSE_BY_VECTORS = MR == 8 && L >= 8;

  /**
   * Round k's interleave of two vectors a, b holding w = 2^(k−1) rows per unit: out[2w·j + y] = a[w·(j + off) + y] for
   * y < w, b[w·(j + off) + y − w] otherwise (a negative source index takes b): a and b hold w rows of L/w columns
   * each, the result 2w rows of L/(2w) columns, the lower columns (off = 0) or the upper ones (off = L/(2w)).
   */
  private static VectorShuffle<Float> interleave(int w, boolean upper) {
    int[] idx = new int[L];
    int off = upper ? L / (2 * w) : 0;
    for (int k = 0; k < L; k++) {
      int j = k / (2 * w), y = k % (2 * w);
      idx[k] = y < w ? w * (j + off) + y : w * (j + off) + y - w - L;
    }
    return VectorShuffle.fromArray(S, idx, 0);
  }

  // static final fields, not an array: the JIT intrinsifies a rearrange only for a shuffle it knows exactly
  private static final VectorShuffle<Float> ZIP1_LO = interleave(1, false), ZIP1_HI = interleave(1, true);
  private static final VectorShuffle<Float> ZIP2_LO = interleave(2, false), ZIP2_HI = interleave(2, true);
  private static final VectorShuffle<Float> ZIP4_LO = interleave(4, false), ZIP4_HI = interleave(4, true);

  /** C[m×n] = 0 (a product over an empty k). */
  private static void zero(Mat c, int m, int n) {
    for (int i = 0; i < m; i++) c.seg().asSlice((c.off() + i * c.rs()) * 4, n * 4L).fill((byte) 0);
  }

  /** The tiles of C[ic.., jc + s·NR..] for slivers s0..s1 of B, sliver s at bp[bBase + s·sliverStride], [kc][NR]. */
  private static void macro(float[] ap, float[] bp, int bBase, int sliverStride, int mc, int kc, int s0, int s1, int nc, Mat c, int ic, int jc,
                            boolean add) {
    for (int s = s0; s < s1; s++) {
      int j = s * NR, w = Math.min(NR, nc - j), bi = bBase + s * sliverStride;
      for (int r0 = 0; r0 < mc; r0 += MR) {
        int h = Math.min(MR, mc - r0);
        long cOff = c.off() + (long) (ic + r0) * c.rs() + jc + j;
        if (h == MR && w == NR) MicroKernel.kernel(ap, r0 * kc, bp, bi, kc, c.seg(), cOff, c.rs(), add);
        else MicroKernel.edge(ap, r0 * kc, bp, bi, kc, c.seg(), cOff, c.rs(), add, h, w);
      }
    }
  }

  /**
   * C[m×n] (=|+=) A[m×k]·B[k×n] on the calling thread, B given already packed: sliver s (columns s·NR..) at
   * bp[bOff + s·k·NR], laid out [k][NR] (columns past n zero), which a caller producing B itself can write directly,
   * saving the copy {@link #packB} makes of every KC block.
   */
  static void gemmPackedB(int m, int n, int k, Mat a, float[] bp, int bOff, Mat c, boolean accumulate) {
    if (!c.rowsContiguous() || c.rowAt() != null) throw new IllegalArgumentException("gemm: C needs unit column stride and no row table");
    if (m == 0 || n == 0) return;
    if (k == 0) {
      if (!accumulate) zero(c, m, n);
      return;
    }
    int slivers = (n + NR - 1) / NR;
    Scratch own = Scratch.get();
    for (int pc = 0; pc < k; pc += KC) {
      int kc = Math.min(KC, k - pc);
      float[] ap = own.packedA(MC * kc);
      for (int ic = 0; ic < m; ic += MC) {
        int mc = Math.min(MC, m - ic);
        packA(a, ic, mc, pc, kc, ap);
        macro(ap, bp, bOff + pc * NR, k * NR, mc, kc, 0, slivers, n, c, ic, 0, accumulate || pc > 0);
      }
    }
  }
}
