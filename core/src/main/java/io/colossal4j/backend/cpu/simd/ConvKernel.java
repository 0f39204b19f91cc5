package io.colossal4j.backend.cpu.simd;

import static io.colossal4j.backend.cpu.CpuBackend.segment;

import io.colossal4j.backend.Conv2dSpec;
import io.colossal4j.backend.cpu.CpuParallel;
import io.colossal4j.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * conv2d and its two backwards for contiguous f32 NCHW tensors, as GEMMs. The forward of a 3×3, stride-1,
 * single-group convolution with at least 16 channels in and out goes through {@link Winograd} instead. Stride 1
 * (the common case: 3×3 "same", 1×1, depthwise) goes through {@link ShiftedConv}, which never builds the im2col matrix; other
 * strides use an explicit im2col matrix as below.
 * Per image n and group g, with K = (Cin/g)·kH·kW and P = Ho·Wo:
 * <pre>
 *   col[K, P]     = im2col(x[n, g])                      (zero where the window hangs over the padding)
 *   out[n, g]     = w_g[Cout/g, K] · col                 forward
 *   gx[n, g]      = col2im(w_gᵀ[K, Cout/g] · gy[n, g])   backward input (scatter-add of overlapping windows)
 *   gw_g         += gy[n, g] · colᵀ[P, K]                 backward weight, summed over images
 * </pre>
 * Images are spread over the pool when there are at least as many as threads (each task has its own col
 * buffer, takes images from a shared counter and runs single-threaded GEMMs); otherwise images run in turn with the GEMM itself parallel. The
 * weight gradient always runs images in turn (the GEMM accumulates into gw, which tasks must not share).
 */
final class ConvKernel {
  private ConvKernel() {}

  private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;

  /** Geometry shared by the three kernels. */
  private record Geo(int n, int cin, int h, int w, int cout, int kh, int kw, int ho, int wo, int groups, Conv2dSpec s) {
    int cinG() { return cin / groups; }
    int coutG() { return cout / groups; }
    int k() { return cinG() * kh * kw; }
    int p() { return ho * wo; }

    static Geo of(Tensor x, Tensor w, Tensor y, Conv2dSpec s) {
      return new Geo(x.size(0), x.size(1), x.size(2), x.size(3), w.size(0), w.size(2), w.size(3), y.size(2), y.size(3), s.groups(), s);
    }
  }

  private static boolean unitStride(Conv2dSpec s) { return s.strideH() == 1 && s.strideW() == 1; }

  static void forward(CpuParallel par, Tensor x, Tensor w, Conv2dSpec spec, Tensor out) {
    if (Winograd.applies(par, x, w, spec, out)) {
      Winograd.forward(par, x, w, spec, out);
      return;
    }
    Geo g = Geo.of(x, w, out, spec);
    MemorySegment sx = segment(x), sw = segment(w), so = segment(out);
    boolean perImage = g.n() >= par.threads();
    CpuParallel inner = perImage ? null : par;
    if (unitStride(spec)) {
      ShiftedConv.Plan p = ShiftedConv.Plan.forward(g.cinG(), g.h(), g.w(), g.kh(), g.kw(), spec);
      long[] rows = p.rowTable();
      forImages(par, g.n(), perImage, (img, own) -> {
        float[] buf = own.first(p.bufferSize()), panel = own.second(g.coutG() * p.cols());
        for (int grp = 0; grp < g.groups(); grp++) {
          ShiftedConv.pad(sx, x.offset() + (img * g.cin() + (long) grp * g.cinG()) * g.h() * g.w(), p, buf);
          ShiftedConv.gemmImage(inner, p, g.coutG(), ShiftedConv.filter(sw, w.offset(), g.coutG(), g.k(), grp), buf, rows, panel,
              so, out.offset() + (img * g.cout() + (long) grp * g.coutG()) * g.p());
        }
      });
      return;
    }
    forImages(par, g.n(), perImage, (img, own) -> {
      float[] col = own.first(g.k() * g.p());
      MemorySegment cs = MemorySegment.ofArray(col);
      for (int grp = 0; grp < g.groups(); grp++) {
        im2col(sx, x.offset() + (img * g.cin() + (long) grp * g.cinG()) * g.h() * g.w(), g, col);
        long oOff = out.offset() + (img * g.cout() + (long) grp * g.coutG()) * g.p();
        Gemm.gemm(inner, g.coutG(), g.p(), g.k(), new Gemm.Mat(sw, w.offset() + (long) grp * g.coutG() * g.k(), g.k(), 1),
            new Gemm.Mat(cs, 0, g.p(), 1), new Gemm.Mat(so, oOff, g.p(), 1), false);
      }
    });
  }

  static void backwardInput(CpuParallel par, Tensor gy, Tensor w, Conv2dSpec spec, Tensor gx) {
    Geo g = Geo.of(gx, w, gy, spec);
    MemorySegment sg = segment(gy), sw = segment(w), so = segment(gx);
    boolean perImage = g.n() >= par.threads();
    CpuParallel inner = perImage ? null : par;
    ShiftedConv.Plan q = unitStride(spec) ? ShiftedConv.Plan.backwardInput(g.coutG(), g.ho(), g.wo(), g.kh(), g.kw(), spec) : null;
    if (q != null) {
      long[] rows = q.rowTable();
      forImages(par, g.n(), perImage, (img, own) -> {
        float[] buf = own.first(q.bufferSize()), panel = own.second(g.cinG() * q.cols());
        for (int grp = 0; grp < g.groups(); grp++) {
          ShiftedConv.pad(sg, gy.offset() + (img * g.cout() + (long) grp * g.coutG()) * g.p(), q, buf);
          Gemm.Mat flipped = ShiftedConv.flippedFilter(sw, w.offset(), g.coutG(), g.cinG(), g.kh(), g.kw(), grp);
          ShiftedConv.gemmImage(inner, q, g.cinG(), flipped, buf, rows, panel, so,
              gx.offset() + (img * g.cin() + (long) grp * g.cinG()) * g.h() * g.w());
        }
      });
      return;
    }
    forImages(par, g.n(), perImage, (img, own) -> {
      float[] col = own.first(g.k() * g.p());
      MemorySegment cs = MemorySegment.ofArray(col);
      for (int grp = 0; grp < g.groups(); grp++) {
        long gOff = gy.offset() + (img * g.cout() + (long) grp * g.coutG()) * g.p();
        Gemm.gemm(inner, g.k(), g.p(), g.coutG(), new Gemm.Mat(sw, w.offset() + (long) grp * g.coutG() * g.k(), 1, g.k()),
            new Gemm.Mat(sg, gOff, g.p(), 1), new Gemm.Mat(cs, 0, g.p(), 1), false);
        col2im(col, g, so, gx.offset() + (img * g.cin() + (long) grp * g.cinG()) * g.h() * g.w());
      }
    });
  }

  static void backwardWeight(CpuParallel par, Tensor x, Tensor gy, Conv2dSpec spec, Tensor gw) {
    Geo g = Geo.of(x, gw, gy, spec);
    MemorySegment sx = segment(x), sg = segment(gy), so = segment(gw);
    if (unitStride(spec)) {
      ShiftedConv.Plan p = ShiftedConv.Plan.forward(g.cinG(), g.h(), g.w(), g.kh(), g.kw(), spec);
      long[] rows = p.rowTable();
      float[] buf = new float[p.bufferSize()], gyPanel = new float[g.coutG() * p.cols()];
      for (int img = 0; img < g.n(); img++)
        for (int grp = 0; grp < g.groups(); grp++) {
          ShiftedConv.pad(sx, x.offset() + ((long) img * g.cin() + (long) grp * g.cinG()) * g.h() * g.w(), p, buf);
          ShiftedConv.weightGradImage(par, p, g.coutG(), sg, gy.offset() + ((long) img * g.cout() + (long) grp * g.coutG()) * g.p(),
              buf, rows, gyPanel, so, gw.offset() + (long) grp * g.coutG() * g.k(), img > 0);
        }
      return;
    }
    float[] col = new float[g.k() * g.p()];
    MemorySegment cs = MemorySegment.ofArray(col);
    for (int img = 0; img < g.n(); img++)
      for (int grp = 0; grp < g.groups(); grp++) {
        im2col(sx, x.offset() + ((long) img * g.cin() + (long) grp * g.cinG()) * g.h() * g.w(), g, col);
        long gOff = gy.offset() + ((long) img * g.cout() + (long) grp * g.coutG()) * g.p();
        Gemm.gemm(par, g.coutG(), g.k(), g.p(), new Gemm.Mat(sg, gOff, g.p(), 1), new Gemm.Mat(cs, 0, 1, g.p()),
            new Gemm.Mat(so, gw.offset() + (long) grp * g.coutG() * g.k(), g.k(), 1), img > 0);
      }
  }

  /** The work on image i, with buffers of the thread running it. */
  @FunctionalInterface
  private interface ImageBody { void run(long image, Scratch own); }

  /**
   * Runs body on every image: spread over the pool by {@link CpuParallel#forEachChunk} (one image per chunk,
   * the caller taking part) when there are at least as many images as threads, else on the caller in turn
   * (the GEMMs are then parallel inside).
   */
  private static void forImages(CpuParallel par, int n, boolean perImage, ImageBody body) {
    if (perImage) par.forEachChunk(n, i -> body.run(i, Scratch.get()));
    else for (int i = 0; i < n; i++) body.run(i, Scratch.get());
  }

  /**
   * Buffers kept per thread, so that images handed out one at a time do not each allocate (and zero) a
   * padded image and a result panel (about 1.7 MB for 64 channels of 56×56). Contents are scratch: the
   * users overwrite (or zero) what they read. A thread runs one convolution at a time.
   */
  private static final class Scratch {
    private static final ThreadLocal<Scratch> PER_THREAD = ThreadLocal.withInitial(Scratch::new);
    private float[] a = new float[0], b = new float[0];

    static Scratch get() { return PER_THREAD.get(); }

    float[] first(int n) { return a.length >= n ? a : (a = new float[n]); }

    float[] second(int n) { return b.length >= n ? b : (b = new float[n]); }
  }

  /** col[(c·kh + i)·kw + j, oh·Wo + ow] = x[c, oh·sh − pt + i·dh, ow·sw − pl + j·dw], 0 outside the image. */
  private static void im2col(MemorySegment x, long xOff, Geo g, float[] col) {
    Conv2dSpec s = g.s();
    int row = 0;
    for (int c = 0; c < g.cinG(); c++)
      for (int i = 0; i < g.kh(); i++)
        for (int j = 0; j < g.kw(); j++, row++) {
          int base = row * g.p();
          for (int oh = 0; oh < g.ho(); oh++) {
            int ih = oh * s.strideH() - s.padTop() + i * s.dilationH();
            int d = base + oh * g.wo();
            if (ih < 0 || ih >= g.h()) { java.util.Arrays.fill(col, d, d + g.wo(), 0f); continue; }
            long src = xOff + ((long) c * g.h() + ih) * g.w();
            int iw0 = -s.padLeft() + j * s.dilationW();
            if (s.strideW() == 1) {   // a shifted run of the input row between two zero margins
              int lo = Math.max(0, -iw0), hi = Math.min(g.wo(), g.w() - iw0);
              if (hi <= lo) { java.util.Arrays.fill(col, d, d + g.wo(), 0f); continue; }
              java.util.Arrays.fill(col, d, d + lo, 0f);
              MemorySegment.copy(x, F, (src + iw0 + lo) * 4, col, d + lo, hi - lo);
              java.util.Arrays.fill(col, d + hi, d + g.wo(), 0f);
            } else {
              for (int ow = 0; ow < g.wo(); ow++) {
                int iw = ow * s.strideW() + iw0;
                col[d + ow] = iw < 0 || iw >= g.w() ? 0f : x.getAtIndex(F, src + iw);
              }
            }
          }
        }
  }

  /** The adjoint of im2col: x[c, ih, iw] = Σ of every col entry that im2col read from there. */
  private static void col2im(float[] col, Geo g, MemorySegment x, long xOff) {
    Conv2dSpec s = g.s();
    x.asSlice(xOff * 4, (long) g.cinG() * g.h() * g.w() * 4).fill((byte) 0);
    int row = 0;
    for (int c = 0; c < g.cinG(); c++)
      for (int i = 0; i < g.kh(); i++)
        for (int j = 0; j < g.kw(); j++, row++) {
          int base = row * g.p();
          for (int oh = 0; oh < g.ho(); oh++) {
            int ih = oh * s.strideH() - s.padTop() + i * s.dilationH();
            if (ih < 0 || ih >= g.h()) continue;
            long dst = xOff + ((long) c * g.h() + ih) * g.w();
            int iw0 = -s.padLeft() + j * s.dilationW();
            for (int ow = 0; ow < g.wo(); ow++) {
              int iw = ow * s.strideW() + iw0;
              if (iw >= 0 && iw < g.w()) x.setAtIndex(F, dst + iw, x.getAtIndex(F, dst + iw) + col[base + oh * g.wo() + ow]);
            }
          }
        }
  }
}
