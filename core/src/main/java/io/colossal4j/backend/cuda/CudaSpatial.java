package io.colossal4j.backend.cuda;

import static io.colossal4j.backend.cuda.CudaKernels.dt;
import static io.colossal4j.backend.cuda.CudaKernels.wide;

import io.colossal4j.backend.Conv2dSpec;
import io.colossal4j.backend.Pool2dSpec;
import io.colossal4j.backend.cuda.ffi.Driver.Dim3;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.MemoryCategory;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SegmentAllocator;
import java.lang.foreign.ValueLayout;

/**
 * Convolution and pooling on CUDA (host side of spatial.cu). A convolution is im2col followed by one
 * batched GEMM per chunk of images through {@link CudaMatmul} (so cuBLASLt does the arithmetic, f32
 * accumulation for every dtype): with K = Cin/groups·kH·kW taps and P = Ho·Wo output pixels,
 * <pre>
 *   forward          out_g[Coutg, Nc·P] = w_g[Coutg, K] @ col_g[K, Nc·P]
 *   backward input   colGrad_g[K, Nc·P] = w_gᵀ @ gy_g[Coutg, Nc·P], then col2im (a gather, no atomics)
 *   backward weight  gw_g[Coutg, K]     = gy_g[Coutg, Nc·P] @ col_gᵀ
 * </pre>
 * where gy_g is gy permuted to [G, Coutg, Nc, P] (one strided copy). Images are processed in chunks so the
 * column buffer stays under {@link #COL_BUDGET_BYTES}; the weight gradient of later chunks accumulates.
 *
 * <p>Operands must be contiguous NCHW, as the {@code Kernels} contract says the ops pass them.
 */
final class CudaSpatial {
  /** Upper bound of one column buffer; a single image larger than this still runs (alone). */
  static final long COL_BUDGET_BYTES = 1L << 30;

  private final CudaKernels k;

  CudaSpatial(CudaKernels kernels) { this.k = kernels; }

  /** The sizes of one convolution, derived from x [N, C, H, W], w [Cout, C/G, kH, kW] and the output size. */
  private record Dims(int n, int c, int h, int w, int cout, int kh, int kw, int ho, int wo, int groups) {
    int cg() { return c / groups; }
    int coutg() { return cout / groups; }
    long taps() { return (long) cg() * kh * kw; }
    long pixels() { return (long) ho * wo; }
  }

  private static Dims dims(String op, Tensor x, Tensor w, Tensor y, Conv2dSpec s) {
    for (Tensor t : new Tensor[] {x, w, y})
      if (t.rank() != 4) throw new TensorException(op + ": expected 4-D NCHW tensors, got " + x.shape() + ", " + w.shape() + ", " + y.shape());
    Dims d = new Dims(x.size(0), x.size(1), x.size(2), x.size(3), w.size(0), w.size(2), w.size(3), y.size(2), y.size(3), s.groups());
    if (d.c() % d.groups() != 0 || d.cout() % d.groups() != 0 || w.size(1) != d.cg() || y.size(1) != d.cout() || y.size(0) != d.n()
        || d.ho() != s.outH(d.h(), d.kh()) || d.wo() != s.outW(d.w(), d.kw()))
      throw new TensorException(op + ": x " + x.shape() + ", w " + w.shape() + " and " + y.shape() + " do not fit groups=" + s.groups() + " " + s);
    return d;
  }

  private static void requireContiguous(String op, Tensor... ts) {
    for (Tensor t : ts)
      if (!t.isContiguous()) throw new TensorException(op + " on CUDA: operands must be contiguous NCHW, got " + t.shape() + " with strides "
          + java.util.Arrays.toString(t.strides()));
  }

  private int chunk(Dims d, DType dtype) {
    long perImage = d.groups() * d.taps() * d.pixels() * dtype.byteSize();
    return (int) Math.max(1, Math.min(d.n(), COL_BUDGET_BYTES / Math.max(1, perImage)));
  }

  /** struct ConvGeom (16 ints, then the first image as a long): 72 bytes. */
  private static MemorySegment geom(SegmentAllocator a, Dims d, Conv2dSpec s, int n0, int nc) {
    MemorySegment g = a.allocate(72, 8);
    int[] v = {d.c(), d.h(), d.w(), d.ho(), d.wo(), d.kh(), d.kw(), s.strideH(), s.strideW(), s.padTop(), s.padLeft(),
        s.dilationH(), s.dilationW(), d.groups(), nc, 0};
    for (int i = 0; i < v.length; i++) g.set(ValueLayout.JAVA_INT, 4L * i, v[i]);
    g.set(ValueLayout.JAVA_LONG, 64, n0);
    return g;
  }

  private long addr(Tensor t) { return k.ptr(t) + t.offset() * t.dtype().byteSize(); }

  /** col [G, K, nc, P] for images n0 .. n0+nc-1 of x. */
  private Tensor im2col(Tensor x, Dims d, Conv2dSpec s, int n0, int nc) {
    Tensor col = Tensor.empty(Shape.of(d.groups(), (int) d.taps(), nc, (int) d.pixels()), x.dtype(), k.backend(), MemoryCategory.TEMPORARY);
    long px = addr(x), pc = k.ptr(col);
    k.launch("im2col_" + x.dtype().byteSize(), Dim3.of(k.blocks(col.numel(), CudaKernels.THREADS)), Dim3.of(CudaKernels.THREADS),
        (a, args) -> args.struct(geom(a, d, s, n0, nc)).ptr(px).ptr(pc));
    return col;
  }

  /** [G, Coutg, nc, P] view of images n0 .. n0+nc-1 of a contiguous [N, Cout, Ho, Wo] tensor. */
  private static Tensor groupedView(Tensor y, Dims d, int n0, int nc) {
    long p = d.pixels();
    return y.view(Shape.of(d.groups(), d.coutg(), nc, (int) p), new long[] {d.coutg() * p, p, d.cout() * p, 1}, y.offset() + n0 * d.cout() * p);
  }

  /** [G, rows, cols] views of a contiguous buffer viewed as groups of row-major matrices. */
  private static Tensor mats(Tensor t, int groups, long rows, long cols) {
    return t.view(Shape.of(groups, (int) rows, (int) cols), new long[] {rows * cols, cols, 1}, t.offset());
  }

  void conv2d(Tensor x, Tensor w, Conv2dSpec s, Tensor out) {
    Dims d = dims("conv2d", x, w, out, s);
    requireContiguous("conv2d", x, w, out);
    if (out.numel() == 0) return;
    if (d.taps() == 0) { k.fill(out, 0); return; }
    int chunk = chunk(d, x.dtype());
    Tensor wg = mats(w, d.groups(), d.coutg(), d.taps());
    for (int n0 = 0; n0 < d.n(); n0 += chunk) {
      int nc = Math.min(chunk, d.n() - n0);
      Tensor col = im2col(x, d, s, n0, nc);
      Tensor tmp = Tensor.empty(Shape.of(d.groups(), d.coutg(), nc, (int) d.pixels()), out.dtype(), k.backend(), MemoryCategory.TEMPORARY);
      k.matmul(wg, mats(col, d.groups(), d.taps(), nc * d.pixels()), mats(tmp, d.groups(), d.coutg(), nc * d.pixels()), false);
      k.copy(tmp, groupedView(out, d, n0, nc));
      col.storage().release();
      tmp.storage().release();
    }
  }

  /** gy's images n0 .. n0+nc-1 as a contiguous [G, Coutg, nc, P] buffer. */
  private Tensor groupedGy(Tensor gy, Dims d, int n0, int nc) {
    Tensor t = Tensor.empty(Shape.of(d.groups(), d.coutg(), nc, (int) d.pixels()), gy.dtype(), k.backend(), MemoryCategory.TEMPORARY);
    k.copy(groupedView(gy, d, n0, nc), t);
    return t;
  }

  void conv2dBackwardInput(Tensor gy, Tensor w, Conv2dSpec s, Tensor gx) {
    Dims d = dims("conv2dBackwardInput", gx, w, gy, s);
    requireContiguous("conv2dBackwardInput", gy, w, gx);
    if (gx.numel() == 0) return;
    if (gy.numel() == 0 || d.taps() == 0) { k.fill(gx, 0); return; }
    int chunk = chunk(d, gy.dtype());
    // w_gᵀ: [G, K, Coutg] as a transposed view of w [G, Coutg, K]
    Tensor wt = w.view(Shape.of(d.groups(), (int) d.taps(), d.coutg()), new long[] {d.coutg() * d.taps(), 1, d.taps()}, w.offset());
    long pgx = addr(gx);
    for (int n0 = 0; n0 < d.n(); n0 += chunk) {
      int nc = Math.min(chunk, d.n() - n0);
      Tensor g = groupedGy(gy, d, n0, nc);
      Tensor colGrad = Tensor.empty(Shape.of(d.groups(), (int) d.taps(), nc, (int) d.pixels()), gy.dtype(), k.backend(), MemoryCategory.TEMPORARY);
      k.matmul(wt, mats(g, d.groups(), d.coutg(), nc * d.pixels()), mats(colGrad, d.groups(), d.taps(), nc * d.pixels()), false);
      long pc = k.ptr(colGrad);
      int n0f = n0;
      long total = (long) nc * d.c() * d.h() * d.w();
      k.launch(wide(gx, gy) ? "col2im_d" : "col2im_f", Dim3.of(k.blocks(total, CudaKernels.THREADS)), Dim3.of(CudaKernels.THREADS),
          (a, args) -> args.struct(geom(a, d, s, n0f, nc)).ptr(pc).i32(dt(colGrad)).ptr(pgx).i32(dt(gx)));
      g.storage().release();
      colGrad.storage().release();
    }
  }

  void conv2dBackwardWeight(Tensor x, Tensor gy, Conv2dSpec s, Tensor gw) {
    Dims d = dims("conv2dBackwardWeight", x, gw, gy, s);
    requireContiguous("conv2dBackwardWeight", x, gy, gw);
    if (gw.numel() == 0) return;
    if (gy.numel() == 0) { k.fill(gw, 0); return; }
    int chunk = chunk(d, x.dtype());
    Tensor gwg = mats(gw, d.groups(), d.coutg(), d.taps());
    for (int n0 = 0; n0 < d.n(); n0 += chunk) {
      int nc = Math.min(chunk, d.n() - n0);
      Tensor col = im2col(x, d, s, n0, nc);
      Tensor g = groupedGy(gy, d, n0, nc);
      long np = nc * d.pixels();
      Tensor colT = col.view(Shape.of(d.groups(), (int) np, (int) d.taps()), new long[] {d.taps() * np, 1, np}, 0);
      k.matmul(mats(g, d.groups(), d.coutg(), np), colT, gwg, n0 > 0);
      col.storage().release();
      g.storage().release();
    }
  }

  // ------------------------------------------------------------- pooling

  /** struct PoolGeom { i64 planes; int h, w, ho, wo, kh, kw, sh, sw, ph, pw, countIncludePad, pad0; }: 56 bytes. */
  private static MemorySegment poolGeom(SegmentAllocator a, Tensor x, Tensor y, Pool2dSpec s) {
    MemorySegment g = a.allocate(56, 8);
    g.set(ValueLayout.JAVA_LONG, 0, (long) x.size(0) * x.size(1));
    int[] v = {x.size(2), x.size(3), y.size(2), y.size(3), s.kernelH(), s.kernelW(), s.strideH(), s.strideW(), s.padH(), s.padW(),
        s.countIncludePad() ? 1 : 0, 0};
    for (int i = 0; i < v.length; i++) g.set(ValueLayout.JAVA_INT, 8 + 4L * i, v[i]);
    return g;
  }

  private static void poolShapes(String op, Tensor x, Tensor y, Pool2dSpec s) {
    if (x.rank() != 4 || y.rank() != 4 || x.size(0) != y.size(0) || x.size(1) != y.size(1)
        || y.size(2) != s.outH(x.size(2)) || y.size(3) != s.outW(x.size(3)))
      throw new TensorException(op + ": input " + x.shape() + " and output " + y.shape() + " do not fit " + s);
  }

  void maxPool2d(Tensor x, Pool2dSpec s, Tensor out, Tensor indices) {
    poolShapes("maxPool2d", x, out, s);
    CudaKernels.sameShape("maxPool2d indices", indices, out);
    if (indices.dtype() != DType.I64) throw new TensorException("maxPool2d: indices must be i64, got " + indices.dtype());
    requireContiguous("maxPool2d", x, out, indices);
    if (out.numel() == 0) return;
    long px = addr(x), po = addr(out), pi = addr(indices);
    k.launch(wide(x, out) ? "maxpool_d" : "maxpool_f", Dim3.of(k.blocks(out.numel(), CudaKernels.THREADS)), Dim3.of(CudaKernels.THREADS),
        (a, args) -> args.struct(poolGeom(a, x, out, s)).ptr(px).i32(dt(x)).ptr(po).i32(dt(out)).ptr(pi));
  }

  void maxPool2dBackward(Tensor gy, Tensor indices, Tensor gx) {
    CudaKernels.sameShape("maxPool2dBackward indices", indices, gy);
    if (gx.rank() != 4 || gy.rank() != 4 || gx.size(0) != gy.size(0) || gx.size(1) != gy.size(1))
      throw new TensorException("maxPool2dBackward: gy " + gy.shape() + " does not fit gx " + gx.shape());
    if (indices.dtype() != DType.I64) throw new TensorException("maxPool2dBackward: indices must be i64, got " + indices.dtype());
    requireContiguous("maxPool2dBackward", gy, indices, gx);
    if (gx.numel() == 0) return;
    // f64 accumulation: overlapping windows add up to kH·kW gradients into one cell, and the sum must round
    // once, as the reference's does (f32 atomics would round per addition, in an order that varies)
    Tensor acc = gx.dtype() == DType.F64 ? gx : Tensor.empty(gx.shape(), DType.F64, k.backend(), MemoryCategory.TEMPORARY);
    k.fill(acc, 0);
    long n = gy.numel(), outPlane = (long) gy.size(2) * gy.size(3), plane = (long) gx.size(2) * gx.size(3);
    long pg = addr(gy), pi = addr(indices), pa = addr(acc), fault = k.faultWord("maxPool2dBackward");
    if (n > 0)
      k.launch("maxpool_bwd_d", Dim3.of(k.blocks(n, CudaKernels.THREADS)), Dim3.of(CudaKernels.THREADS),
          (a, args) -> args.i64(n).i64(outPlane).i64(plane).ptr(pg).i32(dt(gy)).ptr(pi).ptr(pa).ptr(fault));
    if (acc != gx) {
      k.copy(acc, gx);
      acc.storage().release();
    }
  }

  void avgPool2d(Tensor x, Pool2dSpec s, Tensor out) {
    poolShapes("avgPool2d", x, out, s);
    requireContiguous("avgPool2d", x, out);
    if (out.numel() == 0) return;
    long px = addr(x), po = addr(out);
    k.launch(wide(x, out) ? "avgpool_d" : "avgpool_f", Dim3.of(k.blocks(out.numel(), CudaKernels.THREADS)), Dim3.of(CudaKernels.THREADS),
        (a, args) -> args.struct(poolGeom(a, x, out, s)).ptr(px).i32(dt(x)).ptr(po).i32(dt(out)));
  }

  void avgPool2dBackward(Tensor gy, Pool2dSpec s, Tensor gx) {
    poolShapes("avgPool2dBackward", gx, gy, s);
    requireContiguous("avgPool2dBackward", gy, gx);
    if (gx.numel() == 0) return;
    long pg = addr(gy), px = addr(gx);
    k.launch(wide(gy, gx) ? "avgpool_bwd_d" : "avgpool_bwd_f", Dim3.of(k.blocks(gx.numel(), CudaKernels.THREADS)), Dim3.of(CudaKernels.THREADS),
        (a, args) -> args.struct(poolGeom(a, gx, gy, s)).ptr(pg).i32(dt(gy)).ptr(px).i32(dt(gx)));
  }
}
