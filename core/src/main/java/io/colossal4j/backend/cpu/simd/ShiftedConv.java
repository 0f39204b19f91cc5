package io.colossal4j.backend.cpu.simd;

import io.colossal4j.backend.Conv2dSpec;
import io.colossal4j.backend.cpu.CpuParallel;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/**
 * Stride-1 convolution (any padding, dilation, groups) as one GEMM per image and group, with no im2col
 * matrix. The image is copied once into a zero-padded buffer [C, Hp, Wp]; on the flattened padded grid,
 * row k = (c, i, j) of the im2col matrix is then the contiguous run starting at c·Hp·Wp + i·dh·Wp + j·dw,
 * so {@link Gemm} reads it through a row table. The GEMM computes Ho rows of Wp columns; the last
 * (kW − 1)·dw columns of each row are wrap-around garbage, dropped when the result is copied out (and
 * zeroed in gy for the weight gradient so they add nothing). The input gradient is the same convolution of
 * gy padded by d·(k − 1) − pad with the flipped, transposed filter, read through a column table.
 *
 * <p>Memory per task: one padded image and one result panel (about 2·C·Hp·Wp floats), instead of the
 * K×P im2col matrix (kH·kW times larger). Thread-safe: buffers are per call and per task.
 */
final class ShiftedConv {
  private ShiftedConv() {}

  private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;

  /** Geometry of one stride-1 problem: input planes c×h×w, pads, taps kh×kw with dilation dh×dw. */
  record Plan(int c, int h, int w, int pt, int pb, int pl, int pr, int kh, int kw, int dh, int dw) {
    int hp() { return h + pt + pb; }
    int wp() { return w + pl + pr; }
    int ho() { return hp() - dh * (kh - 1); }
    int wo() { return wp() - dw * (kw - 1); }
    int k() { return c * kh * kw; }
    int cols() { return ho() * wp(); }
    /** The padded buffer, with slack for the last row's wrap-around reads. */
    int bufferSize() { return c * hp() * wp() + dw * (kw - 1) + 1; }

    long[] rowTable() {
      long[] t = new long[k()];
      int r = 0;
      for (int ci = 0; ci < c; ci++)
        for (int i = 0; i < kh; i++)
          for (int j = 0; j < kw; j++) t[r++] = (long) ci * hp() * wp() + (long) i * dh * wp() + (long) j * dw;
      return t;
    }

    static Plan forward(int c, int h, int w, int kh, int kw, Conv2dSpec s) {
      return new Plan(c, h, w, s.padTop(), s.padBottom(), s.padLeft(), s.padRight(), kh, kw, s.dilationH(), s.dilationW());
    }

    /** The input-gradient problem: gy [c = Cout/g, ho, wo] padded so that the output is the input's h×w, or null if a pad would be negative. */
    static Plan backwardInput(int coutG, int ho, int wo, int kh, int kw, Conv2dSpec s) {
      int eh = s.dilationH() * (kh - 1), ew = s.dilationW() * (kw - 1);
      int pt = eh - s.padTop(), pb = eh - s.padBottom(), pl = ew - s.padLeft(), pr = ew - s.padRight();
      if (pt < 0 || pb < 0 || pl < 0 || pr < 0) return null;
      return new Plan(coutG, ho, wo, pt, pb, pl, pr, kh, kw, s.dilationH(), s.dilationW());
    }
  }

  /** Copies planes [c, h, w] at element offset {@code off} of src into the zeroed padded buffer. */
  static void pad(MemorySegment src, long off, Plan p, float[] buf) {
    Arrays.fill(buf, 0f);
    for (int ci = 0; ci < p.c(); ci++)
      for (int y = 0; y < p.h(); y++) {
        long s = off + ((long) ci * p.h() + y) * p.w();
        int d = (ci * p.hp() + y + p.pt()) * p.wp() + p.pl();
        MemorySegment.copy(src, F, s * 4, buf, d, p.w());
      }
  }

  /**
   * Columns of the padded grid per GEMM call in {@link #gemmImage}. One call packs its B block (K rows of the
   * image read through the row table) for kc = 256 rows at a time: 384 columns make that 384 KiB, which stays
   * in the 1 MiB L2 next to the filter block and the output tile, whereas one call over a whole 56×56 image
   * (3,248 columns, 3.3 MB per kc block) streamed its packed B through L3 and memory and ran 1.4–1.5× slower
   * on one thread with the machine busy.
   */
  private static final int COL_BLOCK = 384;

  /**
   * out[m, ho, wo] (at element offset outOff of dst) = A[m, K] · im2col(image) for one padded image,
   * using {@code panel} [m × cols] as the GEMM's output before the garbage columns are dropped.
   */
  static void gemmImage(CpuParallel par, Plan p, int m, Gemm.Mat a, float[] buf, long[] rows, float[] panel, MemorySegment dst, long outOff) {
    MemorySegment bs = MemorySegment.ofArray(buf), ps = MemorySegment.ofArray(panel);
    for (int c0 = 0; c0 < p.cols(); c0 += COL_BLOCK)
      Gemm.gemm(par, m, Math.min(COL_BLOCK, p.cols() - c0), p.k(), a, new Gemm.Mat(bs, c0, 0, 1, rows, null), new Gemm.Mat(ps, c0, p.cols(), 1), false);
    for (int r = 0; r < m; r++)
      for (int y = 0; y < p.ho(); y++)
        MemorySegment.copy(panel, r * p.cols() + y * p.wp(), dst, F,
            (outOff + ((long) r * p.ho() + y) * p.wo()) * 4, p.wo());
  }

  /** The filter of group g as A [Cout/g × K]: row-major, K = (c, i, j). */
  static Gemm.Mat filter(MemorySegment w, long wOff, int coutG, int k, int g) {
    return new Gemm.Mat(w, wOff + (long) g * coutG * k, k, 1);
  }

  /**
   * The flipped, transposed filter of group g as A [Cin/g × Cout/g·kh·kw]: element (c, (co, i, j)) is
   * w[co, c, kh−1−i, kw−1−j].
   */
  static Gemm.Mat flippedFilter(MemorySegment w, long wOff, int coutG, int cinG, int kh, int kw, int g) {
    int taps = kh * kw;
    long[] cols = new long[coutG * taps];
    for (int co = 0; co < coutG; co++)
      for (int i = 0; i < kh; i++)
        for (int j = 0; j < kw; j++) cols[(co * kh + i) * kw + j] = (long) co * cinG * taps + (long) (kh - 1 - i) * kw + (kw - 1 - j);
    return new Gemm.Mat(w, wOff + (long) g * coutG * cinG * taps, taps, 0, null, cols);
  }

  /**
   * gw_g[Cout/g × K] (+)= gy'[Cout/g × cols] · im2colᵀ, where gy' is gy on the padded grid with zero garbage
   * columns ({@code gyPanel}, filled here) and im2colᵀ is read through a column table.
   */
  static void weightGradImage(CpuParallel par, Plan p, int coutG, MemorySegment gy, long gyOff, float[] buf, long[] rows,
                              float[] gyPanel, MemorySegment gw, long gwOff, boolean accumulate) {
    Arrays.fill(gyPanel, 0f);
    for (int co = 0; co < coutG; co++)
      for (int y = 0; y < p.ho(); y++)
        MemorySegment.copy(gy, F, (gyOff + ((long) co * p.ho() + y) * p.wo()) * 4, gyPanel, co * p.cols() + y * p.wp(), p.wo());
    MemorySegment bs = MemorySegment.ofArray(buf), gs = MemorySegment.ofArray(gyPanel);
    Gemm.gemm(par, coutG, p.k(), p.cols(), new Gemm.Mat(gs, 0, p.cols(), 1), new Gemm.Mat(bs, 0, 1, 0, null, rows),
        new Gemm.Mat(gw, gwOff, p.k(), 1), accumulate);
  }
}
