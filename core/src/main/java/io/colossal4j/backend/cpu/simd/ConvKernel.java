package io.colossal4j.backend.cpu.simd;

import static io.colossal4j.backend.cpu.CpuBackend.segment;

import io.colossal4j.backend.Conv2dSpec;
import io.colossal4j.backend.cpu.CpuParallel;
import io.colossal4j.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * conv2d and its two backwards for contiguous f32 NCHW tensors, as GEMMs. The forward and both gradients of a 3×3,
 * stride-1, single-group convolution with at least 16 channels in and out go through {@link Winograd} instead. Stride 1
 * (the common case: 3×3 "same", 1×1, depthwise) goes through {@link ShiftedConv}, which never builds the im2col
 * matrix; a one-channel input with a small kernel (a stem's first layer) goes through {@link StemConv}; other strides go through {@link BatchedConv}: an explicit im2col matrix over a chunk of images and one
 * GEMM per chunk and group.
 * For stride 1, images are spread over the pool when there are at least as many as threads (each task has its own
 * buffers, takes images from a shared counter and runs single-threaded GEMMs); otherwise images run in turn with
 * the GEMM itself parallel. The weight gradient runs images in turn (the GEMM accumulates into gw, which tasks
 * must not share).
 */
final class ConvKernel {
  private ConvKernel() {}

  private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;

  /** Geometry shared by the three kernels. */
  record Geo(int n, int cin, int h, int w, int cout, int kh, int kw, int ho, int wo, int groups, Conv2dSpec s) {
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
    if (StemConv.applies(x.size(1), w.size(2), w.size(3), out.size(2), out.size(3), spec)) {
      StemConv.forward(par, x, w, spec, out);
      return;
    }
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
    BatchedConv.forward(par, x, w, spec, out, BatchedConv.COL_BUDGET);
  }

  static void backwardInput(CpuParallel par, Tensor gy, Tensor w, Conv2dSpec spec, Tensor gx) {
    if (Winograd.appliesToInputGradient(par, gy, w, spec, gx)) {
      Winograd.backwardInput(par, gy, w, spec, gx);
      return;
    }
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
    BatchedConv.backwardInput(par, gy, w, spec, gx, BatchedConv.COL_BUDGET);
  }

  /** The weight gradient; its padded image and gy panel (zero-filled per image) come from {@code scratch}, no garbage per call. */
  static void backwardWeight(CpuParallel par, ScratchPool scratch, Tensor x, Tensor gy, Conv2dSpec spec, Tensor gw) {
    if (StemConv.applies(x.size(1), gw.size(2), gw.size(3), gy.size(2), gy.size(3), spec)) {
      StemConv.backwardWeight(par, x, gy, spec, gw);
      return;
    }
    if (Winograd.appliesToWeightGradient(par, x, gy, spec, gw)) {
      Winograd.backwardWeight(par, scratch, x, gy, spec, gw);
      return;
    }
    Geo g = Geo.of(x, gw, gy, spec);
    MemorySegment sx = segment(x), sg = segment(gy), so = segment(gw);
    if (unitStride(spec)) {
      ShiftedConv.Plan p = ShiftedConv.Plan.forward(g.cinG(), g.h(), g.w(), g.kh(), g.kw(), spec);
      long[] rows = p.rowTable();
      float[] buf = scratch.floats(p.bufferSize()), gyPanel = scratch.floats(g.coutG() * p.cols());
      try {
        for (int img = 0; img < g.n(); img++)
          for (int grp = 0; grp < g.groups(); grp++) {
            ShiftedConv.pad(sx, x.offset() + ((long) img * g.cin() + (long) grp * g.cinG()) * g.h() * g.w(), p, buf);
            ShiftedConv.weightGradImage(par, p, g.coutG(), sg, gy.offset() + ((long) img * g.cout() + (long) grp * g.coutG()) * g.p(),
                buf, rows, gyPanel, so, gw.offset() + (long) grp * g.coutG() * g.k(), img > 0);
          }
      } finally {
        scratch.give(buf, gyPanel);
      }
      return;
    }
    BatchedConv.backwardWeight(par, x, gy, spec, gw, BatchedConv.COL_BUDGET);
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
}
