package io.colossal4j.backend.cuda;

import static io.colossal4j.backend.cuda.CudaKernels.dt;
import static io.colossal4j.backend.cuda.CudaKernels.variant;
import static io.colossal4j.backend.cuda.CudaKernels.wide;

import io.colossal4j.backend.BinaryOp;
import io.colossal4j.backend.ReduceOp;
import io.colossal4j.backend.cuda.ffi.Driver.Dim3;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.MemoryCategory;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;
import java.lang.foreign.SegmentAllocator;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/** Host side of reduce.cu and norm.cu: reductions, softmax and layer norm with their backward passes. */
final class CudaNormKernels {
  private final CudaKernels k;

  /** Layer-norm backwards that added a pending gradient inside the kernel (tests check the fused path is taken). */
  private final java.util.concurrent.atomic.AtomicLong accumulatingBackwards = new java.util.concurrent.atomic.AtomicLong();

  CudaNormKernels(CudaKernels kernels) { this.k = kernels; }

  long accumulatingBackwards() { return accumulatingBackwards.get(); }

  static int pow2AtLeast(long n, int min, int max) {
    int t = min;
    while (t < n && t < max) t <<= 1;
    return t;
  }

  static int gridFor(long items) { return (int) Math.max(1, Math.min(items, 1L << 30)); }

  // ------------------------------------------------------------- reductions

  void reduce(ReduceOp op, Tensor x, int[] dims, Tensor out) {
    int r = x.rank();
    boolean[] reduced = new boolean[r];
    for (int d : dims) {
      if (d < 0 || d >= Math.max(r, 1)) throw new TensorException("reduce: dim " + d + " out of range for " + x.shape());
      if (r > 0) reduced[d] = true;
    }
    int[] keepShape = x.shape().toArray();
    for (int d = 0; d < r; d++) if (reduced[d]) keepShape[d] = 1;
    if (!Shape.of(keepShape).equals(out.shape()))
      throw new TensorException("reduce " + op + ": output shape " + out.shape() + " should be " + Arrays.toString(keepShape));
    if ((op == ReduceOp.ARGMAX || op == ReduceOp.ARGMIN) && (dims.length != 1 || x.numel() == 0))
      throw new TensorException(op + " reduces exactly one non-empty dim, got dims " + Arrays.toString(dims) + " of " + x.shape());
    long px = k.ptr(x), po = k.ptr(out);
    if (out.numel() == 0) return;
    if (op == ReduceOp.SUM && (columnSum(x, reduced, out) || fullSum(x, reduced, out))) return;
    if ((op == ReduceOp.ARGMAX || op == ReduceOp.ARGMIN) && argLastDim(op, x, dims[0], out)) return;
    int nk = 0, nr = 0;
    for (int d = 0; d < r; d++) if (reduced[d]) nr++; else nk++;
    int[] ks = new int[nk], rs = new int[nr];
    long[] kxs = new long[nk], kos = new long[nk], rxs = new long[nr];
    int smallestDim = -1;
    for (int d = 0, i = 0, j = 0; d < r; d++) {
      if (x.size(d) > 1 && (smallestDim < 0 || Math.abs(x.stride(d)) < Math.abs(x.stride(smallestDim)))) smallestDim = d;
      if (reduced[d]) { rs[j] = x.size(d); rxs[j++] = x.stride(d); }
      else { ks[i] = x.size(d); kxs[i] = x.stride(d); kos[i++] = out.stride(d); }
    }
    CudaGeometry.Space kept = CudaGeometry.coalesce(Shape.of(ks), new long[][] {kxs, kos}, new long[] {x.offset(), out.offset()});
    CudaGeometry.Space red = CudaGeometry.coalesce(Shape.of(rs), new long[][] {rxs}, new long[] {0});
    long nout = kept.numel();
    boolean rows = nout < 256 || smallestDim < 0 || reduced[smallestDim];
    // double accumulation for f64/integer inputs or an f64 result; an i64 index output needs no double values
    boolean dbl = wide(x) || out.dtype() == DType.F64;
    String name = (rows ? "reduce_rows" : "reduce_cols") + (dbl ? "_d" : "_f");
    Dim3 grid = rows ? Dim3.of(gridFor(nout)) : Dim3.of((int) Math.min((nout + 31) / 32, Integer.MAX_VALUE));
    Dim3 block = rows ? Dim3.of(pow2AtLeast(red.numel(), 32, 256)) : Dim3.of(32, 8);
    if (!rows && (nout + 31) / 32 > Integer.MAX_VALUE) throw new TensorException("reduce: too many outputs " + nout);
    k.launch(name, grid, block, (a, args) -> args.struct(CudaGeometry.rgeom(a, kept, red, x.offset(), out.offset()))
        .i32(op.ordinal()).ptr(px).i32(dt(x)).ptr(po).i32(dt(out)));
  }

  /**
   * ARGMAX/ARGMIN over the last dim of contiguous bf16/f32 rows (n a multiple of 8, 16-byte aligned) into a
   * contiguous i64 output: arg_rows_dense, 16-byte loads, the generic kernel's indices. False when that does not apply.
   */
  private boolean argLastDim(ReduceOp op, Tensor x, int dim, Tensor out) {
    int r = x.rank();
    DType t = x.dtype();
    if (r == 0 || dim != r - 1 || (t != DType.BF16 && t != DType.F32) || out.dtype() != DType.I64 || !x.isContiguous() || !out.isContiguous())
      return false;
    int n = x.size(r - 1);
    long rows = x.numel() / n;
    if (n % 8 != 0 || addr(x) % 16 != 0) return false;
    long px = addr(x), po = addr(out);
    k.launch("arg_rows_dense_" + (t == DType.BF16 ? "b" : "f"), Dim3.of(gridFor(rows)), Dim3.of(pow2AtLeast(n / 8, 32, 1024)), (a, args) ->
        args.i32(op.ordinal()).i64(rows).i32(n).ptr(px).ptr(po));
    return true;
  }

  /**
   * A sum over the leading dims of a contiguous bf16/f32 tensor into a contiguous output of its dtype (a linear
   * layer's bias gradient: [tokens, features] summed over tokens) by the vectorised column-sum kernel: chunks
   * of rows into f32 partials, then one pass over the chunks. False when that shape of problem does not apply.
   */
  private boolean columnSum(Tensor x, boolean[] reduced, Tensor out) {
    int r = x.rank(), p = 0;
    while (p < r && reduced[p]) p++;
    for (int d = p; d < r; d++) if (reduced[d]) return false;
    DType t = x.dtype();
    if (p == 0 || p == r || (t != DType.BF16 && t != DType.F32) || out.dtype() != t || !x.isContiguous() || !out.isContiguous()) return false;
    long rowCount = 1, n = 1;
    for (int d = 0; d < r; d++) if (d < p) rowCount *= x.size(d); else n *= x.size(d);
    long rows = rowCount;
    if (rows < 64 || n % 2 != 0 || n > Integer.MAX_VALUE || addr(x) % (2L * t.byteSize()) != 0) return false;
    int cols = (int) n, colBlocks = (cols + 511) / 512;
    long want = Math.max(1, (long) k.backend().multiprocessors() * 4 / colBlocks);
    int chunks = (int) Math.max(1, Math.min(Math.min(want, rows / 16), 1024));
    long rowsPerChunk = (rows + chunks - 1) / chunks;
    Tensor part = Tensor.empty(Shape.of(chunks, cols), DType.F32, k.backend(), MemoryCategory.TEMPORARY);
    long px = addr(x), pp = k.ptr(part);
    k.launch("colsum_vec_" + vecName(x), Dim3.of(colBlocks, chunks), Dim3.of(256), (a, args) ->
        args.i64(rows).i32(cols).i64(rowsPerChunk).ptr(px).ptr(pp));
    Tensor flat = out.view(Shape.of(cols), new long[] {1}, out.offset());
    k.launch("wb_final_wide_f", Dim3.of((cols + 31) / 32), Dim3.of(256), (a, args) ->
        args.i32(cols).i32(chunks).ptr(pp).ptr(pp).struct(targ(a, null)).struct(targ(a, flat)));
    part.storage().release();
    return true;
  }

  /**
   * The sum of every element of a large contiguous bf16/f32 tensor into an f32/f64 scalar (gradient norms, a
   * mean loss): partial sums from a block per SM share, then reduce_rows over the partials. One block for the
   * whole tensor, as the generic path runs a single output, leaves the rest of the GPU idle.
   */
  private boolean fullSum(Tensor x, boolean[] reduced, Tensor out) {
    for (boolean r : reduced) if (!r) return false;
    DType t = x.dtype(), o = out.dtype();
    long n = x.numel();
    if (n < (1 << 16) || (t != DType.BF16 && t != DType.F32) || (o != DType.F32 && o != DType.F64) || !x.isContiguous()) return false;
    int blocks = (int) Math.min((n + 255) / 256, (long) k.backend().multiprocessors() * 4);
    Tensor part = Tensor.empty(Shape.of(blocks), o, k.backend(), MemoryCategory.TEMPORARY);
    long px = addr(x), pp = k.ptr(part);
    k.launch("sum_partial_" + (t == DType.BF16 ? "b" : "f") + (o == DType.F64 ? "d" : "f"), Dim3.of(blocks), Dim3.of(256), (a, args) ->
        args.i64(n).ptr(px).ptr(pp));
    reduce(ReduceOp.SUM, part, new int[] {0}, out.view(Shape.of(1), new long[] {1}, out.offset()));
    part.storage().release();
    return true;
  }

  // ------------------------------------------------------------- softmax

  /** The dense row kernels apply: rows of n values, n a multiple of 8, every operand dense (see {@link CudaKernels#dense}). */
  private boolean denseRows(int n, Tensor... ts) { return n > 0 && n % 8 == 0 && k.dense(ts); }

  void softmax(Tensor x, int dim, boolean log, Tensor out) {
    CudaKernels.sameShape("softmax", x, out);
    int d = x.shape().axis(dim);
    long px = k.ptr(x), po = k.ptr(out);
    if (x.numel() == 0) return;
    int n = x.rank() == 0 ? 1 : x.size(d);
    if (d == x.rank() - 1 && denseRows(n, x, out)) {
      long rows = x.numel() / n, ax = addr(x), ao = addr(out);
      k.launch("softmax_dense_" + CudaKernels.denseLetters(x, out), Dim3.of(gridFor(rows)), Dim3.of(pow2AtLeast(n / 8, 32, 1024)), (a, args) ->
          args.i64(rows).i32(n).i32(log ? 1 : 0).ptr(ax).ptr(ao));
      return;
    }
    Shape lines = x.rank() == 0 ? x.shape() : x.shape().with(d, 1);
    CudaGeometry.Space s = CudaGeometry.coalesce(lines, new long[][] {x.strides(), out.strides()}, new long[] {x.offset(), out.offset()});
    long sx = x.rank() == 0 ? 0 : x.stride(d), so = out.rank() == 0 ? 0 : out.stride(d);
    k.launch(variant("softmax", x, out), Dim3.of(gridFor(s.numel())), Dim3.of(lineThreads(n)), (a, args) ->
        args.struct(CudaGeometry.geom(a, s, "softmax")).i32(n).i64(sx).i64(so).i32(log ? 1 : 0).ptr(px).i32(dt(x)).ptr(po).i32(dt(out)));
  }

  // ------------------------------------------------------------- cross entropy

  /** The fused cross-entropy kernels apply: dense bf16/f32 logits [N, C] with C a multiple of 8, contiguous i64 targets [N]. */
  boolean fusedCrossEntropy(Tensor logits, Tensor targets) {
    return logits.rank() == 2 && targets.rank() == 1 && targets.size(0) == logits.size(0) && targets.dtype() == DType.I64
        && targets.isContiguous() && (logits.dtype() == DType.BF16 || logits.dtype() == DType.F32) && denseRows(logits.size(1), logits);
  }

  private void requireCrossEntropy(String what, Tensor logits, Tensor targets, Tensor... rowVectors) {
    boolean ok = fusedCrossEntropy(logits, targets);
    for (Tensor v : rowVectors) ok &= v.rank() == 1 && v.size(0) == logits.size(0) && v.isContiguous();
    if (!ok)
      throw new TensorException(what + ": needs dense bf16/f32 logits [N, C] with C a multiple of 8, contiguous i64 targets [N] and contiguous [N]"
          + " row vectors; got logits " + logits.shape() + " " + logits.dtype() + ", targets " + targets.shape() + " " + targets.dtype());
  }

  void crossEntropyForward(Tensor logits, Tensor targets, Tensor nll, Tensor lse) {
    requireCrossEntropy("crossEntropyForward", logits, targets, nll, lse);
    if (nll.dtype() != logits.dtype() || lse.dtype() != DType.F32)
      throw new TensorException("crossEntropyForward: nll must have the logits' dtype " + logits.dtype() + " and lse f32, got " + nll.dtype() + ", " + lse.dtype());
    long rows = logits.size(0);
    int n = logits.size(1);
    if (rows == 0) return;
    long px = addr(logits), pt = addr(targets), pn = addr(nll), pl = addr(lse);
    k.launch("ce_fwd_" + (logits.dtype() == DType.BF16 ? "b" : "f"), Dim3.of(gridFor(rows)), Dim3.of(pow2AtLeast(n / 8, 32, 1024)), (a, args) ->
        args.i64(rows).i32(n).ptr(px).ptr(pt).ptr(pn).ptr(pl));
  }

  void crossEntropyBackward(Tensor logits, Tensor targets, Tensor lse, Tensor w, Tensor gx) {
    requireCrossEntropy("crossEntropyBackward", logits, targets, lse, w);
    CudaKernels.sameShape("crossEntropyBackward", logits, gx);
    if (w.dtype() != logits.dtype() || lse.dtype() != DType.F32 || gx.dtype() != logits.dtype() || !denseRows(logits.size(1), gx))
      throw new TensorException("crossEntropyBackward: w and gx must be dense in the logits' dtype " + logits.dtype() + " and lse f32, got "
          + w.dtype() + ", " + gx.dtype() + ", " + lse.dtype());
    long rows = logits.size(0);
    int n = logits.size(1);
    if (rows == 0) return;
    long px = addr(logits), pt = addr(targets), pl = addr(lse), pw = addr(w), pg = addr(gx);
    k.launch("ce_bwd_" + (logits.dtype() == DType.BF16 ? "b" : "f"), Dim3.of(gridFor(rows)), Dim3.of(pow2AtLeast(n / 8, 32, 1024)), (a, args) ->
        args.i64(rows).i32(n).ptr(px).ptr(pt).ptr(pl).ptr(pw).ptr(pg));
  }

  void softmaxBackward(Tensor y, Tensor gy, int dim, boolean log, Tensor gx) {
    CudaKernels.sameShape("softmaxBackward", y, gx);
    CudaKernels.sameShape("softmaxBackward", gy, gx);
    int d = y.shape().axis(dim);
    long py = k.ptr(y), pg = k.ptr(gy), pgx = k.ptr(gx);
    if (y.numel() == 0) return;
    int n = y.rank() == 0 ? 1 : y.size(d);
    if (d == y.rank() - 1 && denseRows(n, y, gy, gx)) {
      long rows = y.numel() / n, ay = addr(y), ag = addr(gy), ao = addr(gx);
      k.launch("softmax_bwd_dense_" + CudaKernels.denseLetters(y, gy, gx), Dim3.of(gridFor(rows)), Dim3.of(pow2AtLeast(n / 8, 32, 1024)), (a, args) ->
          args.i64(rows).i32(n).i32(log ? 1 : 0).ptr(ay).ptr(ag).ptr(ao));
      return;
    }
    Shape lines = y.rank() == 0 ? y.shape() : y.shape().with(d, 1);
    CudaGeometry.Space s = CudaGeometry.coalesce(lines, new long[][] {y.strides(), gy.strides(), gx.strides()},
        new long[] {y.offset(), gy.offset(), gx.offset()});
    long sy = y.rank() == 0 ? 0 : y.stride(d), sg = gy.rank() == 0 ? 0 : gy.stride(d), sgx = gx.rank() == 0 ? 0 : gx.stride(d);
    k.launch(variant("softmax_bwd", y, gy, gx), Dim3.of(gridFor(s.numel())), Dim3.of(lineThreads(n)), (a, args) ->
        args.struct(CudaGeometry.geom(a, s, "softmaxBackward")).i32(n).i64(sy).i64(sg).i64(sgx).i32(log ? 1 : 0)
            .ptr(py).i32(dt(y)).ptr(pg).i32(dt(gy)).ptr(pgx).i32(dt(gx)));
  }

  private static int lineThreads(int n) { return n <= 256 ? pow2AtLeast(n, 32, 256) : n <= 4096 ? 256 : 512; }

  // ------------------------------------------------------------- layer norm

  /**
   * norm.cu's struct TArg { const void* p; int dt; int pad; i64 off; i64 stride; } (32 bytes) of a vector (its
   * innermost stride); a null tensor is p = 0. Also written for the fused GELU kernels' bias-gradient output.
   */
  MemorySegment targ(SegmentAllocator a, Tensor t) {
    MemorySegment s = a.allocate(32, 8).fill((byte) 0); // scratch memory is reused: clear it
    if (t == null) return s;
    s.set(ValueLayout.JAVA_LONG, 0, k.ptr(t));
    s.set(ValueLayout.JAVA_INT, 8, dt(t));
    s.set(ValueLayout.JAVA_LONG, 16, t.offset());
    s.set(ValueLayout.JAVA_LONG, 24, t.rank() == 0 ? 0 : t.stride(-1));
    return s;
  }

  private Tensor contiguous(Tensor t) {
    if (t.isContiguous()) return t;
    Tensor c = Tensor.empty(t.shape(), t.dtype(), k.backend(), MemoryCategory.TEMPORARY);
    k.copy(t, c);
    return c;
  }

  private static void requireContiguous(String op, String what, Tensor t) {
    if (t != null && !t.isContiguous()) throw new TensorException(op + ": " + what + " must be contiguous, got strides " + Arrays.toString(t.strides()));
  }

  private static void requireLength(String op, String what, Tensor t, long n) {
    if (t != null && t.numel() != n) throw new TensorException(op + ": " + what + " has " + t.numel() + " elements, expected " + n + " (shape " + t.shape() + ")");
  }

  private long addr(Tensor t) { return k.addr(t); }

  /** The two-columns-per-thread weight-gradient kernel applies: f32 accumulation, contiguous bf16/f32 rows of one dtype, n even. */
  private boolean vecWeightGrads(int n, boolean d, Tensor gy, Tensor x, Tensor mean, Tensor rstd) {
    DType t = x.dtype();
    if (d || (t != DType.BF16 && t != DType.F32) || gy.dtype() != t || n % 2 != 0) return false;
    if (mean.dtype() != DType.F32 || rstd.dtype() != DType.F32 || !mean.isContiguous() || !rstd.isContiguous()) return false;
    int align = 2 * t.byteSize();
    return x.isContiguous() && gy.isContiguous() && addr(x) % align == 0 && addr(gy) % align == 0;
  }

  private static String vecName(Tensor x) { return x.dtype() == DType.BF16 ? "bf16" : "f32"; }

  /**
   * Vectors of 16 bytes per lane for the warp-per-row kernels of norm_vec.cu, or 0 when they do not apply:
   * they need bf16 or f32 rows of one dtype, contiguous and 16-byte aligned, w and b (if any) of that dtype
   * with unit stride, and n a multiple of the vector width with at most 8 vectors per lane.
   */
  private int vectorsPerLane(int n, Tensor x, Tensor w, Tensor b, Tensor y, Tensor... rowsOperands) {
    DType t = x.dtype();
    if (t != DType.BF16 && t != DType.F32) return 0;
    int e = 16 / t.byteSize();
    if (n % e != 0 || n / e > 8 * 32) return 0;
    for (Tensor r : rowsOperands) if (r.dtype() != t || !r.isContiguous() || addr(r) % 16 != 0) return 0;
    for (Tensor v : new Tensor[] {w, b})
      if (v != null && (v.dtype() != t || (v.rank() > 0 && v.stride(-1) != 1) || addr(v) % 16 != 0)) return 0;
    if (y.dtype() != t) return 0;
    return (n / e + 31) / 32;
  }

  /** About four elements per thread, at most 512 threads: several rows' blocks share an SM. */
  private static int normThreads(int n) { return pow2AtLeast((n + 3) / 4, 32, 512); }

  void layerNorm(Tensor x, Tensor w, Tensor b, double eps, Tensor y, Tensor mean, Tensor rstd) {
    CudaKernels.sameShape("layerNorm", x, y);
    int n = x.rank() == 0 ? 1 : x.size(-1);
    long rows = n == 0 ? 0 : x.numel() / n;
    requireContiguous("layerNorm", "y", y);
    requireContiguous("layerNorm", "mean", mean);
    requireContiguous("layerNorm", "rstd", rstd);
    requireLength("layerNorm", "mean", mean, rows);
    requireLength("layerNorm", "rstd", rstd, rows);
    requireLength("layerNorm", "weight", w, n);
    requireLength("layerNorm", "bias", b, n);
    if (rows == 0) return;
    int vpt = vectorsPerLane(n, x, w, b, y, x, y);
    if (vpt > 0 && mean.dtype() == DType.F32 && rstd.dtype() == DType.F32) {
      long px = addr(x), pw = addr(w), pb = addr(b), py = addr(y), pm = addr(mean), pr = addr(rstd);
      k.launch("ln_vec_" + vecName(x) + "_" + vpt, Dim3.of(gridFor((rows + 3) / 4)), Dim3.of(128), (a, args) ->
          args.i64(rows).i32(n).f32((float) eps).ptr(px).ptr(pw).ptr(pb).ptr(py).ptr(pm).ptr(pr));
      return;
    }
    Tensor xc = contiguous(x);
    boolean d = wide(x, w, b, y);
    k.launch(d ? "layernorm_d" : "layernorm_f", Dim3.of(gridFor(rows)), Dim3.of(normThreads(n)), (a, args) ->
        args.i64(rows).i32(n).f64(eps).struct(targ(a, xc)).struct(targ(a, w)).struct(targ(a, b)).struct(targ(a, y))
            .struct(targ(a, mean)).struct(targ(a, rstd)));
    if (xc != x) xc.storage().release();
  }

  /**
   * gx (plus {@code pending} when non-null: see {@link io.colossal4j.backend.Kernels#layerNormBackwardAccumulate}),
   * and gw, gb when non-null. The kernels add a contiguous pending of gx's dtype (16-byte aligned for the vectorised
   * ones) in their store: dx rounded to the dtype first, then added uncontracted (the separate add's rounding); any
   * other pending is added after, by that separate add.
   */
  void layerNormBackward(Tensor gy, Tensor x, Tensor w, Tensor mean, Tensor rstd, Tensor pending, Tensor gx, Tensor gw, Tensor gb) {
    CudaKernels.sameShape("layerNormBackward", gy, x);
    CudaKernels.sameShape("layerNormBackward", gx, x);
    int n = x.rank() == 0 ? 1 : x.size(-1);
    long rows = n == 0 ? 0 : x.numel() / n;
    requireContiguous("layerNormBackward", "gx", gx);
    requireLength("layerNormBackward", "mean", mean, rows);
    requireLength("layerNormBackward", "rstd", rstd, rows);
    requireLength("layerNormBackward", "weight", w, n);
    requireLength("layerNormBackward", "gw", gw, n);
    requireLength("layerNormBackward", "gb", gb, n);
    if (n == 0) return;
    Tensor xc = contiguous(x), gyc = contiguous(gy), mc = contiguous(mean), rc = contiguous(rstd);
    boolean d = wide(x, gy, w, gx, gw, gb);
    String sfx = d ? "_d" : "_f";
    int vpt = vectorsPerLane(n, xc, w, null, gx, gyc, gx);
    boolean vec = rows > 0 && vpt > 0 && mc.dtype() == DType.F32 && rc.dtype() == DType.F32;
    // the kernels add pending in their store when it has gx's layout; otherwise a separate add below
    Tensor acc = rows > 0 && pending != null && pending.dtype() == gx.dtype() && pending.isContiguous() && (!vec || addr(pending) % 16 == 0)
        ? pending : null;
    // one pass for gx, gw and gb where the per-lane column sums fit the registers (40 floats of each)
    boolean fused = vec && !d && w != null && gw != null && gb != null && vpt <= (x.dtype() == DType.BF16 ? 5 : 8);
    if (fused) {
      backwardWithWeightGrads(rows, n, vpt, gyc, xc, w, mc, rc, acc, gx, gw, gb);
    } else if (vec) {
      long pg = addr(gyc), px = addr(xc), pw = addr(w), pm = addr(mc), pr = addr(rc), pa = addr(acc), pgx = addr(gx);
      k.launch("ln_vec_bwd_" + vecName(x) + "_" + vpt, Dim3.of(gridFor((rows + 3) / 4)), Dim3.of(128), (a, args) ->
          args.i64(rows).i32(n).ptr(pg).ptr(px).ptr(pw).ptr(pm).ptr(pr).ptr(pa).ptr(pgx));
    } else if (rows > 0)
      k.launch("layernorm_bwd" + sfx, Dim3.of(gridFor(rows)), Dim3.of(normThreads(n)), (a, args) ->
          args.i64(rows).i32(n).struct(targ(a, gyc)).struct(targ(a, xc)).struct(targ(a, w)).struct(targ(a, mc)).struct(targ(a, rc)).struct(targ(a, gx))
              .struct(targ(a, acc)));
    if ((gw != null || gb != null) && !fused) weightGrads(rows, n, d, gyc, xc, mc, rc, gw, gb);
    if (pending != null && acc == null) k.binary(BinaryOp.ADD, pending, gx, gx);
    if (acc != null) accumulatingBackwards.incrementAndGet();
    for (Tensor t : new Tensor[] {xc, gyc, mc, rc}) if (t != x && t != gy && t != mean && t != rstd) t.storage().release();
  }

  /**
   * gx, gw and gb in one pass over gy and x (ln_vec_bwd_wb: a block's rows into per-block partial column sums), then
   * wb_final_wide over the blocks. Four blocks per SM at most, each of 4 warps with 2·4·S floats of shared memory
   * (S = vpt·E·32 columns per warp, E = 8 bf16 or 4 f32 per vector: at most 40 KiB here) and a copy of w (n elements).
   */
  private void backwardWithWeightGrads(long rows, int n, int vpt, Tensor gy, Tensor x, Tensor w, Tensor mean, Tensor rstd, Tensor acc,
                                       Tensor gx, Tensor gw, Tensor gb) {
    int blocks = (int) Math.max(1, Math.min((rows + 3) / 4, 4L * k.backend().multiprocessors()));
    Tensor pw = Tensor.empty(Shape.of(blocks, n), DType.F32, k.backend(), MemoryCategory.TEMPORARY);
    Tensor pb = Tensor.empty(Shape.of(blocks, n), DType.F32, k.backend(), MemoryCategory.TEMPORARY);
    long pg = addr(gy), px = addr(x), pwt = addr(w), pm = addr(mean), pr = addr(rstd), pa = addr(acc), pgx = addr(gx);
    long ppw = k.ptr(pw), ppb = k.ptr(pb);
    int perVector = x.dtype() == DType.BF16 ? 8 : 4;
    int shared = 2 * 4 * vpt * perVector * 32 * 4 + (w == null ? 0 : n * x.dtype().byteSize());   // the sums, then w's copy
    k.launch("ln_vec_bwd_wb_" + vecName(x) + "_" + vpt, Dim3.of(blocks), Dim3.of(128), shared, (a, args) ->
        args.i64(rows).i32(n).ptr(pg).ptr(px).ptr(pwt).ptr(pm).ptr(pr).ptr(pa).ptr(pgx).ptr(ppw).ptr(ppb));
    k.launch("wb_final_wide_f", Dim3.of((n + 31) / 32), Dim3.of(256), (a, args) ->
        args.i32(n).i32(blocks).ptr(ppw).ptr(ppb).struct(targ(a, gw)).struct(targ(a, gb)));
    pw.storage().release();
    pb.storage().release();
  }

  /** gw = sum over rows of gy * xhat, gb = sum of gy: partial sums per chunk of rows, then one pass over the chunks. */
  private void weightGrads(long rows, int n, boolean d, Tensor gy, Tensor x, Tensor mean, Tensor rstd, Tensor gw, Tensor gb) {
    int colBlocks = (n + 255) / 256;
    long want = Math.max(1, (long) k.backend().multiprocessors() * 4 / colBlocks);
    int chunks = (int) Math.max(1, Math.min(Math.min(want, rows), 1024));
    long rowsPerChunk = (rows + chunks - 1) / chunks;
    DType acc = d ? DType.F64 : DType.F32;
    Tensor pw = Tensor.empty(Shape.of(chunks, n), acc, k.backend(), MemoryCategory.TEMPORARY);
    Tensor pb = Tensor.empty(Shape.of(chunks, n), acc, k.backend(), MemoryCategory.TEMPORARY);
    String sfx = d ? "_d" : "_f";
    if (rows > 0 && vecWeightGrads(n, d, gy, x, mean, rstd)) {
      int vecBlocks = (n + 511) / 512;
      long px = addr(x), pg = addr(gy), pm = addr(mean), pr = addr(rstd);
      k.launch("ln_wb_vec_" + vecName(x), Dim3.of(vecBlocks, chunks), Dim3.of(256), (a, args) ->
          args.i64(rows).i32(n).i64(rowsPerChunk).ptr(pg).ptr(px).ptr(pm).ptr(pr).ptr(k.ptr(pw)).ptr(k.ptr(pb)));
    } else if (rows > 0) {
      k.launch("layernorm_wb_partial" + sfx, Dim3.of(colBlocks, chunks), Dim3.of(256), (a, args) ->
          args.i64(rows).i32(n).i64(rowsPerChunk).struct(targ(a, gy)).struct(targ(a, x)).struct(targ(a, mean)).struct(targ(a, rstd))
              .ptr(k.ptr(pw)).ptr(k.ptr(pb)));
    } else {
      k.fill(pw, 0);
      k.fill(pb, 0);
    }
    k.launch("layernorm_wb_final" + sfx, Dim3.of(colBlocks), Dim3.of(256), (a, args) ->
        args.i32(n).i32(chunks).ptr(k.ptr(pw)).ptr(k.ptr(pb)).struct(targ(a, gw)).struct(targ(a, gb)));
    pw.storage().release();
    pb.storage().release();
  }
}
