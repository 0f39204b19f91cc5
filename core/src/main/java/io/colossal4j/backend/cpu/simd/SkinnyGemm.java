package io.colossal4j.backend.cpu.simd;

import io.colossal4j.backend.cpu.CpuParallel;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorSpecies;

/**
 * The GEMMs of linear layers over many tokens, where the layer's widths are small (n, k ≤ {@link #MAX_WIDTH})
 * and the token count m is large: a vision transformer's 1088 × 64..192 products.
 *
 * <ul>
 *   <li>{@link #rowsTimes}: C[m×n] = A[m×k]·B[k×n] (+ bias row) (+ C), A row-major: the forward (x·Wᵀ + b) and
 *   the input gradient (g·W). B (the weight, K·N floats) is packed once per call into {@link #W}-wide column
 *   slivers; A is not packed: each task bulk-copies its rows into a heap buffer (no transpose) and the tile
 *   kernel broadcasts from those rows; the bias is the accumulators' starting value, so there is no bias pass.
 *   <li>{@link #weightGrad}: gw[n×k] = gᵀ·x and gb[n] = Σ_rows g, g [m×n], x [m×k] row-major: the weight and
 *   bias gradients in one pass. The m rows are split into chunks (their count depends only on m, never on the
 *   thread count, so results are the same on any pool); each chunk's partial product is summed in chunk order.
 * </ul>
 *
 * <p>Compared with {@link Gemm} (general shapes), these skip the packing of A, the KC blocking (k fits one
 * block) and its per-block pool dispatches: one {@link CpuParallel#forEachChunk} per call. The tile kernel holds
 * an {@link #R}×{@link #W} block of C in 16 vector registers (4 rows × 4 vectors: per k step 4 vector loads of B,
 * 4 broadcasts of A, 16 FMAs). Numerics: f32 products summed in k order per element (rowsTimes) or per chunk
 * then in chunk order (weightGrad). Thread-safe: scratch buffers are per thread.
 */
final class SkinnyGemm {
  private SkinnyGemm() {}

  static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
  static final int L = S.length();
  /** Rows of C per tile. */
  static final int R = 4;
  /** Columns of C per tile: four vectors. */
  static final int W = 4 * L;
  /** The widest n and k taken (larger layers go to {@link Gemm}, whose blocking suits them). */
  static final int MAX_WIDTH = 512;
  /** The largest weight (n·k) whose gradient {@link #weightGrad} takes: each of its up to 17 chunks keeps a partial. */
  static final int MAX_WEIGHT = 1 << 16;
  /** Rows of A per task of {@link #rowsTimes}. */
  private static final int TASK_ROWS = 64;
  private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;
  private static final ByteOrder NATIVE = ByteOrder.nativeOrder();

  /** Whether {@link #rowsTimes} takes C[m×n] = A[m×k]·B: A row-major, widths in range, enough rows to be worth it. */
  static boolean fitsRowsTimes(int m, int n, int k, Gemm.Mat a) {
    return a.rowsContiguous() && a.rowAt() == null && m >= 2 * R && n <= MAX_WIDTH && k <= MAX_WIDTH && k > 0 && n > 0;
  }

  /** Whether {@link #weightGrad} takes gw[n×k] = gᵀ·x with g [m×n] and x [m×k]: both row-major, n·k ≤ {@link #MAX_WEIGHT}. */
  static boolean fitsWeightGrad(int m, int n, int k, Gemm.Mat g, Gemm.Mat x) {
    return g.rowsContiguous() && g.rowAt() == null && x.rowsContiguous() && x.rowAt() == null
        && m >= 2 * R && n > 0 && k > 0 && (long) n * k <= MAX_WEIGHT;
  }

  /**
   * C[m×n] (=|+=) A[m×k]·B[k×n] + bias: A row-major ({@link #fitsRowsTimes}), B any strides, C unit column
   * stride; bias is null or n floats added to every row (with accumulate, C + A·B + bias).
   */
  static void rowsTimes(CpuParallel par, int m, int n, int k, Gemm.Mat a, Gemm.Mat b, float[] bias, Gemm.Mat c, boolean accumulate) {
    int tiles = (n + W - 1) / W;
    Scratch own = Scratch.get();
    float[] bp = own.packedB(tiles * k * W);
    pack(b, 0, k, n, bp);
    float[] init = bias == null ? null : padded(bias, tiles * W);
    int tasks = (m + TASK_ROWS - 1) / TASK_ROWS;
    run(par, tasks, t -> {
      int i0 = (int) t * TASK_ROWS, rows = Math.min(TASK_ROWS, m - i0), padRows = (rows + R - 1) / R * R;
      Scratch s = Scratch.get();
      float[] ap = s.rowsA(padRows * k), tile = s.tile();
      for (int r = 0; r < rows; r++) MemorySegment.copy(a.seg(), F, (a.off() + (long) (i0 + r) * a.rs()) * 4, ap, r * k, k);
      java.util.Arrays.fill(ap, rows * k, padRows * k, 0f);
      for (int j = 0; j < tiles; j++) {
        for (int r0 = 0; r0 < rows; r0 += R) {
          SkinnyTile.tile(ap, r0 * k, k, 1, bp, j * k * W, k, init, j * W, tile, 0, W);
          flush(tile, c, i0 + r0, j * W, Math.min(R, rows - r0), Math.min(W, n - j * W), accumulate);
        }
      }
    });
  }

  /**
   * gw[n×k] (=|+=) gᵀ·x and, when gb is non-null, gb[n] (=|+=) the column sums of g; g [m×n] and x [m×k]
   * row-major ({@link #fitsWeightGrad}), gw unit column stride, gb addressed by its Mat's row stride
   * (one row of n). accumulate adds to both outputs.
   */
  static void weightGrad(CpuParallel par, int m, int n, int k, Gemm.Mat g, Gemm.Mat x, Gemm.Mat gw, Gemm.Mat gb, boolean accumulate) {
    int tiles = (k + W - 1) / W, kPad = tiles * W, nPad = (n + R - 1) / R * R;
    int chunkRows = Math.max(128, (m + 15) / 16), chunks = (m + chunkRows - 1) / chunkRows;
    int partSize = nPad * kPad + nPad;   // the chunk's gw rows, then its gb
    float[] parts = Scratch.get().partials(chunks * partSize);
    run(par, chunks, ch -> {
      int m0 = (int) ch * chunkRows, rows = Math.min(chunkRows, m - m0), base = (int) ch * partSize;
      Scratch s = Scratch.get();
      float[] ga = s.rowsA(rows * nPad + R), xp = s.packedB(tiles * rows * W);
      for (int r = 0; r < rows; r++) {
        MemorySegment.copy(g.seg(), F, (g.off() + (long) (m0 + r) * g.rs()) * 4, ga, r * nPad, n);
        if (nPad > n) java.util.Arrays.fill(ga, r * nPad + n, (r + 1) * nPad, 0f);
      }
      pack(x, m0, rows, k, xp);
      for (int j = 0; j < tiles; j++)
        for (int r0 = 0; r0 < nPad; r0 += R)
          SkinnyTile.tile(ga, r0, 1, nPad, xp, j * rows * W, rows, null, 0, parts, base + r0 * kPad + j * W, kPad);
      columnSums(ga, rows, nPad, parts, base + nPad * kPad);
    });
    mergeInto(parts, chunks, partSize, n, k, kPad, nPad, gw, gb, accumulate);
  }

  /** out[o + c] = Σ_r ga[r·nPad + c] for c < nPad: the chunk's part of the bias gradient. */
  private static void columnSums(float[] ga, int rows, int nPad, float[] out, int o) {
    java.util.Arrays.fill(out, o, o + nPad, 0f);
    int c = 0;
    for (; c + L <= nPad; c += L) {
      FloatVector acc = FloatVector.zero(S);
      for (int r = 0; r < rows; r++) acc = acc.add(FloatVector.fromArray(S, ga, r * nPad + c));
      acc.intoArray(out, o + c);
    }
    for (; c < nPad; c++) {
      float acc = 0;
      for (int r = 0; r < rows; r++) acc += ga[r * nPad + c];
      out[o + c] = acc;
    }
  }

  /** Sums the chunks' partials in chunk order into gw (and gb) on the calling thread; accumulate adds them to the outputs. */
  private static void mergeInto(float[] parts, int chunks, int partSize, int n, int k, int kPad, int nPad, Gemm.Mat gw, Gemm.Mat gb,
                                boolean accumulate) {
    MemorySegment seg = gw.seg();
    for (int i = 0; i < n; i++) {
      long dst = (gw.off() + (long) i * gw.rs()) * 4;
      for (int c = 0; c < k; c += L) {
        VectorMask<Float> mask = S.indexInRange(c, k);
        FloatVector acc = accumulate ? FloatVector.fromMemorySegment(S, seg, dst + c * 4L, NATIVE, mask) : FloatVector.zero(S);
        for (int ch = 0; ch < chunks; ch++) acc = acc.add(FloatVector.fromArray(S, parts, ch * partSize + i * kPad + c));
        acc.intoMemorySegment(seg, dst + c * 4L, NATIVE, mask);
      }
    }
    if (gb == null) return;
    for (int c = 0; c < n; c++) {
      long at = gb.off() + c * gb.cs();
      float acc = accumulate ? gb.seg().getAtIndex(F, at) : 0f;
      for (int ch = 0; ch < chunks; ch++) acc += parts[ch * partSize + nPad * kPad + c];
      gb.seg().setAtIndex(F, at, acc);
    }
  }

  /**
   * Packs rows [p0, p0+rows) of B (k'×n, any strides) into W-wide slivers: sliver j at [j·rows·W], layout
   * [rows][W], columns ≥ n zero.
   */
  static void pack(Gemm.Mat b, int p0, int rows, int n, float[] dst) {
    int tiles = (n + W - 1) / W;
    MemorySegment seg = b.seg();
    if (b.rowsContiguous() && b.rowAt() == null) {
      for (int j = 0; j < tiles; j++) {
        int w = Math.min(W, n - j * W), d = j * rows * W;
        for (int p = 0; p < rows; p++) {
          MemorySegment.copy(seg, F, (b.off() + (long) (p0 + p) * b.rs() + j * W) * 4, dst, d + p * W, w);
          if (w < W) java.util.Arrays.fill(dst, d + p * W + w, d + (p + 1) * W, 0f);
        }
      }
      return;
    }
    float[] col = Scratch.get().column(rows);
    for (int c = 0; c < tiles * W; c++) {
      int d = (c / W) * rows * W + c % W;
      if (c >= n) { for (int p = 0; p < rows; p++) dst[d + p * W] = 0f; continue; }
      long base = b.off() + b.col(c);
      if (b.rowAt() == null && b.rs() == 1) MemorySegment.copy(seg, F, (base + p0) * 4, col, 0, rows);   // a transposed weight's column
      else for (int p = 0; p < rows; p++) col[p] = seg.getAtIndex(F, base + b.row(p0 + p));
      for (int p = 0; p < rows; p++) dst[d + p * W] = col[p];
    }
  }

  /** Writes rows [0, h) and columns [0, w) of the R×W tile to C at (i, j), adding C's values when accumulating. */
  private static void flush(float[] tile, Gemm.Mat c, int i, int j, int h, int w, boolean accumulate) {
    MemorySegment seg = c.seg();
    for (int r = 0; r < h; r++) {
      long off = (c.off() + (long) (i + r) * c.rs() + j) * 4;
      if (!accumulate) { MemorySegment.copy(tile, r * W, seg, F, off, w); continue; }
      for (int v = 0; v < W && v < w; v += L) {
        VectorMask<Float> mask = S.indexInRange(v, w);
        FloatVector sum = FloatVector.fromArray(S, tile, r * W + v).add(FloatVector.fromMemorySegment(S, seg, off + v * 4L, NATIVE, mask));
        sum.intoMemorySegment(seg, off + v * 4L, NATIVE, mask);
      }
    }
  }

  private static float[] padded(float[] row, int len) {
    return row.length == len ? row : java.util.Arrays.copyOf(row, len);
  }

  /** Runs chunks [0, n): on the calling thread when there is one, else shared with the pool. */
  private static void run(CpuParallel par, long n, CpuParallel.ChunkBody body) {
    if (par == null || n == 1) { for (long c = 0; c < n; c++) body.run(c); return; }
    par.forEachChunk(n, body);
  }

  /** Per-thread buffers: contents are scratch, every element read is written first in the same call. */
  private static final class Scratch {
    private static final ThreadLocal<Scratch> PER_THREAD = ThreadLocal.withInitial(Scratch::new);
    private float[] b = new float[0], a = new float[0], parts = new float[0], col = new float[0];
    private final float[] tile = new float[Math.max(R * W, W)];

    static Scratch get() { return PER_THREAD.get(); }

    float[] packedB(int n) { return b.length >= n ? b : (b = new float[n]); }

    float[] rowsA(int n) { return a.length >= n ? a : (a = new float[n]); }

    float[] partials(int n) { return parts.length >= n ? parts : (parts = new float[n]); }

    float[] column(int n) { return col.length >= n ? col : (col = new float[n]); }

    float[] tile() { return tile; }
  }
}
