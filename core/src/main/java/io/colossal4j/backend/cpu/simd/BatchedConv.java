package io.colossal4j.backend.cpu.simd;

import static io.colossal4j.backend.cpu.CpuBackend.segment;

import io.colossal4j.backend.Conv2dSpec;
import io.colossal4j.backend.cpu.CpuParallel;
import io.colossal4j.backend.cpu.simd.ConvKernel.Geo;
import io.colossal4j.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/**
 * The im2col convolutions (every stride other than 1) of contiguous f32 NCHW tensors, over a chunk of images at
 * once, so that each of the three kernels runs one GEMM per chunk and group instead of one small GEMM per image.
 * For images n0 ≤ n &lt; n0 + nb of a chunk, group g, K = (Cin/g)·kH·kW, P = Ho·Wo and Q = nb·P:
 * <pre>
 *   col[K, Q]       col[:, i·P + p] = im2col(x[n0 + i, g])[:, p]        (zero where a window hangs over the padding)
 *   t[Cout/g, Q]    = w_g · col;           out[n0 + i, g] = t[:, i·P ..]        forward
 *   t[Cout/g, Q]    = gy[n0 + i, g] side by side;  col = w_gᵀ · t;  gx[n0 + i, g] = col2im(col[:, i·P ..])   backward input
 *   gw_g           += t · colᵀ                                                    backward weight, over chunks
 * </pre>
 * The GEMMs are parallel inside; building col and t, and scattering results, are parallel over the chunk's
 * images. A chunk holds as many images as keep col within {@code budget} floats (at least one image), so a large
 * input (a 7×7 stem on 224×224 images) does not build a matrix of hundreds of megabytes.
 *
 * <p>Thread-safety: the matrices are buffers of the calling thread ({@link Scratch}), filled by pool workers
 * during the call only (each with its own image buffer); a thread runs one convolution at a time.
 */
final class BatchedConv {
  private BatchedConv() {}

  /** Floats of col per chunk (16 MiB): the 64 images of the default job's stem fit in one chunk. */
  static final long COL_BUDGET = 1L << 22;
  private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;

  /** Images per chunk: as many as keep K·P·nb within budget, at least 1, at most n. */
  private static int chunk(Geo g, long budget) {
    return (int) Math.max(1, Math.min(g.n(), budget / ((long) g.k() * g.p())));
  }

  static void forward(CpuParallel par, Tensor x, Tensor w, Conv2dSpec spec, Tensor out, long budget) {
    Geo g = Geo.of(x, w, out, spec);
    MemorySegment sx = segment(x), sw = segment(w), so = segment(out);
    int nb = chunk(g, budget);
    Plan plan = Plan.of(g);
    Scratch own = Scratch.get();
    for (int n0 = 0; n0 < g.n(); n0 += nb) {
      int cnt = Math.min(nb, g.n() - n0), q = cnt * g.p(), first = n0;
      float[] col = own.col(g.k() * q), t = own.t(g.coutG() * q);
      for (int grp = 0; grp < g.groups(); grp++) {
        int gr = grp;
        perImage(par, cnt, i -> im2col(sx, x.offset() + ((first + i) * g.cin() + (long) gr * g.cinG()) * g.h() * g.w(), g, plan, col, q, (int) i * g.p()));
        Gemm.gemm(par, g.coutG(), q, g.k(), new Gemm.Mat(sw, w.offset() + (long) grp * g.coutG() * g.k(), g.k(), 1),
            new Gemm.Mat(MemorySegment.ofArray(col), 0, q, 1), new Gemm.Mat(MemorySegment.ofArray(t), 0, q, 1), false);
        perImage(par, cnt, i -> copyRows(t, q, (int) i * g.p(), so, out.offset() + ((first + i) * g.cout() + (long) gr * g.coutG()) * g.p(), g, true));
      }
    }
  }

  static void backwardInput(CpuParallel par, Tensor gy, Tensor w, Conv2dSpec spec, Tensor gx, long budget) {
    Geo g = Geo.of(gx, w, gy, spec);
    MemorySegment sg = segment(gy), sw = segment(w), so = segment(gx);
    int nb = chunk(g, budget);
    Plan plan = Plan.of(g);
    Scratch own = Scratch.get();
    for (int n0 = 0; n0 < g.n(); n0 += nb) {
      int cnt = Math.min(nb, g.n() - n0), q = cnt * g.p(), first = n0;
      float[] col = own.col(g.k() * q), t = own.t(g.coutG() * q);
      for (int grp = 0; grp < g.groups(); grp++) {
        int gr = grp;
        perImage(par, cnt, i -> copyRows(t, q, (int) i * g.p(), sg, gy.offset() + ((first + i) * g.cout() + (long) gr * g.coutG()) * g.p(), g, false));
        Gemm.gemm(par, g.k(), q, g.coutG(), new Gemm.Mat(sw, w.offset() + (long) grp * g.coutG() * g.k(), 1, g.k()),
            new Gemm.Mat(MemorySegment.ofArray(t), 0, q, 1), new Gemm.Mat(MemorySegment.ofArray(col), 0, q, 1), false);
        perImage(par, cnt, i -> col2im(col, q, (int) i * g.p(), g, plan, so, gx.offset() + ((first + i) * g.cin() + (long) gr * g.cinG()) * g.h() * g.w()));
      }
    }
  }

  static void backwardWeight(CpuParallel par, Tensor x, Tensor gy, Conv2dSpec spec, Tensor gw, long budget) {
    Geo g = Geo.of(x, gw, gy, spec);
    MemorySegment sx = segment(x), sg = segment(gy), so = segment(gw);
    int nb = chunk(g, budget);
    Plan plan = Plan.of(g);
    Scratch own = Scratch.get();
    for (int n0 = 0; n0 < g.n(); n0 += nb) {
      int cnt = Math.min(nb, g.n() - n0), q = cnt * g.p(), first = n0;
      float[] col = own.col(g.k() * q), t = own.t(g.coutG() * q);
      for (int grp = 0; grp < g.groups(); grp++) {
        int gr = grp;
        perImage(par, cnt, i -> {
          im2col(sx, x.offset() + ((first + i) * g.cin() + (long) gr * g.cinG()) * g.h() * g.w(), g, plan, col, q, (int) i * g.p());
          copyRows(t, q, (int) i * g.p(), sg, gy.offset() + ((first + i) * g.cout() + (long) gr * g.coutG()) * g.p(), g, false);
        });
        // colᵀ is Q×K: element (r, c) = col[c·Q + r]
        Gemm.gemm(par, g.coutG(), g.k(), q, new Gemm.Mat(MemorySegment.ofArray(t), 0, q, 1),
            new Gemm.Mat(MemorySegment.ofArray(col), 0, 1, q), new Gemm.Mat(so, gw.offset() + (long) grp * g.coutG() * g.k(), g.k(), 1), n0 > 0);
      }
    }
  }

  @FunctionalInterface
  private interface ImageBody { void run(long i); }

  /** Runs body on images [0, cnt) of a chunk, two images per task, tasks taken from a shared counter. */
  private static void perImage(CpuParallel par, int cnt, ImageBody body) {
    par.forEachChunk((cnt + 1) / 2, t -> { for (long i = 2 * t; i < Math.min(cnt, 2 * t + 2); i++) body.run(i); });
  }

  /**
   * Moves the Cout/g rows of one image between t (row r at t[r·ld + c0 ..], P floats) and the image's group in
   * NCHW memory (row r at seg[off + r·P ..]): into the tensor when {@code toTensor}, else out of it.
   */
  private static void copyRows(float[] t, int ld, int c0, MemorySegment seg, long off, Geo g, boolean toTensor) {
    int p = g.p();
    for (int r = 0; r < g.coutG(); r++) {
      if (toTensor) MemorySegment.copy(t, r * ld + c0, seg, F, (off + (long) r * p) * 4, p);
      else MemorySegment.copy(seg, F, (off + (long) r * p) * 4, t, r * ld + c0, p);
    }
  }

  /**
   * The gather plan of one geometry: an image's group copied into a zero-bordered buffer (cinG planes of
   * PH×PW, PH = H + pt + pb, PW = W + pl + pr), where output position p = oh·Wo + ow of tap (c, i, j) reads
   * element {@code c·PH·PW + tap[(i·kw + j)] + at[p]}: every window lies inside the padded planes (that is
   * how Ho and Wo are defined), so the gather needs no bounds tests.
   */
  record Plan(int ph, int pw, int[] at, int[] tap) {
    static Plan of(Geo g) {
      Conv2dSpec s = g.s();
      int ph = g.h() + s.padTop() + s.padBottom(), pw = g.w() + s.padLeft() + s.padRight();
      int[] at = new int[g.p()], tap = new int[g.kh() * g.kw()];
      for (int oh = 0; oh < g.ho(); oh++)
        for (int ow = 0; ow < g.wo(); ow++) at[oh * g.wo() + ow] = oh * s.strideH() * pw + ow * s.strideW();
      for (int i = 0; i < g.kh(); i++)
        for (int j = 0; j < g.kw(); j++) tap[i * g.kw() + j] = i * s.dilationH() * pw + j * s.dilationW();
      return new Plan(ph, pw, at, tap);
    }

    int plane() { return ph * pw; }
  }

  /** col[row·ld + c0 + p] = x[c, oh·sh − pt + i·dh, ow·sw − pl + j·dw] for row = (c·kh + i)·kw + j, 0 outside the image. */
  static void im2col(MemorySegment x, long xOff, Geo g, Plan plan, float[] col, int ld, int c0) {
    Conv2dSpec s = g.s();
    float[] img = Scratch.get().image(g.cinG() * plan.plane());
    Arrays.fill(img, 0, g.cinG() * plan.plane(), 0f);
    for (int c = 0; c < g.cinG(); c++)
      for (int ih = 0; ih < g.h(); ih++)
        MemorySegment.copy(x, F, (xOff + ((long) c * g.h() + ih) * g.w()) * 4, img,
            c * plan.plane() + (ih + s.padTop()) * plan.pw() + s.padLeft(), g.w());
    int[] at = plan.at();
    int row = 0, taps = g.kh() * g.kw();
    for (int c = 0; c < g.cinG(); c++)
      for (int t = 0; t < taps; t++, row++) {
        int d = row * ld + c0, src = c * plan.plane() + plan.tap()[t];
        for (int p = 0; p < at.length; p++) col[d + p] = img[src + at[p]];
      }
  }

  /** The adjoint of im2col: x[c, ih, iw] = Σ of every col entry that im2col read from there (the image's group is overwritten). */
  static void col2im(float[] col, int ld, int c0, Geo g, Plan plan, MemorySegment x, long xOff) {
    Conv2dSpec s = g.s();
    float[] img = Scratch.get().image(g.cinG() * plan.plane());
    Arrays.fill(img, 0, g.cinG() * plan.plane(), 0f);
    int[] at = plan.at();
    int row = 0, taps = g.kh() * g.kw();
    for (int c = 0; c < g.cinG(); c++)
      for (int t = 0; t < taps; t++, row++) {
        int d = row * ld + c0, dst = c * plan.plane() + plan.tap()[t];
        for (int p = 0; p < at.length; p++) img[dst + at[p]] += col[d + p];
      }
    for (int c = 0; c < g.cinG(); c++)
      for (int ih = 0; ih < g.h(); ih++)
        MemorySegment.copy(img, c * plan.plane() + (ih + s.padTop()) * plan.pw() + s.padLeft(), x, F,
            (xOff + ((long) c * g.h() + ih) * g.w()) * 4, g.w());
  }

  /** col and t of the calling thread, grown on demand; contents are scratch, fully written before they are read. */
  private static final class Scratch {
    private static final ThreadLocal<Scratch> PER_THREAD = ThreadLocal.withInitial(Scratch::new);
    private float[] col = new float[0], t = new float[0], image = new float[0];

    static Scratch get() { return PER_THREAD.get(); }

    float[] col(int n) { return col.length >= n ? col : (col = new float[n]); }

    float[] t(int n) { return t.length >= n ? t : (t = new float[n]); }

    /** One image's group, for the thread that gathers or scatters it (a pool worker or the caller). */
    float[] image(int n) { return image.length >= n ? image : (image = new float[n]); }
  }
}
