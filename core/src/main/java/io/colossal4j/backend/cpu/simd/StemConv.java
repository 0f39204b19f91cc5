package io.colossal4j.backend.cpu.simd;

import static io.colossal4j.backend.cpu.CpuBackend.segment;
import static io.colossal4j.backend.cpu.simd.VMath.S;

import io.colossal4j.backend.Conv2dSpec;
import io.colossal4j.backend.cpu.CpuParallel;
import io.colossal4j.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;

/**
 * The first convolution of a stem: one input channel (a grey image), a small kernel (T = kh·kw ≤ {@link #MAX_TAPS}
 * taps), any stride and padding, no dilation or groups. Its GEMM has K = T (9 for 3×3), far too short for packing
 * to pay, so each image is done on its own in L1: its T × P tap matrix (P = ho·wo output positions, zero where a
 * tap falls in the padding) is gathered into a heap buffer, and
 * <ul>
 *   <li>forward: out[co, p] = Σ_t w[co, t]·col[t, p], four output channels per pass over p (four FMA chains per load),
 *   written straight into the NCHW output;
 *   <li>weight gradient: gw[co, t] = Σ_images Σ_p gy[co, p]·col[t, p], per-lane partial sums per chunk of images,
 *   added lane by lane and chunk by chunk in a fixed order (the chunks depend on the batch only, so the result is
 *   the same on any number of threads).
 * </ul>
 * Images are spread over the pool by {@link CpuParallel#forEachChunk}. Numerics: f32 sums in t order (forward) and in
 * (image, position-vector, lane) order (weight gradient); the reference sums in double.
 */
final class StemConv {
  private StemConv() {}

  /** The most taps (kh·kw) taken. */
  static final int MAX_TAPS = 49;
  /** The largest tap matrix per image (T·P floats): 256 KiB. */
  private static final int MAX_COL = 1 << 16;
  /** Images per chunk of the weight gradient: each chunk keeps cout·T·L partial sums. */
  private static final int IMAGES_PER_CHUNK = 8;
  private static final int L = S.length();
  private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;
  private static final ByteOrder NATIVE = ByteOrder.nativeOrder();

  /** x [n, 1, h, w], w [cout, 1, kh, kw], y [n, cout, ho, wo]: whether this kernel takes the convolution. */
  static boolean applies(int cin, int kh, int kw, int ho, int wo, Conv2dSpec s) {
    return cin == 1 && s.groups() == 1 && s.dilationH() == 1 && s.dilationW() == 1 && kh * kw <= MAX_TAPS
        && (long) kh * kw * ho * wo <= MAX_COL && ho * wo >= L;
  }

  /** The geometry of one image: input h×w, kernel kh×kw, output ho×wo. */
  private record Geo(int h, int w, int kh, int kw, int ho, int wo, Conv2dSpec s) {
    int taps() { return kh * kw; }
    int p() { return ho * wo; }
    /** Positions padded to whole vectors: the tap matrix's row length. */
    int pPad() { return (p() + L - 1) / L * L; }

    static Geo of(Tensor x, Tensor w, Tensor y, Conv2dSpec s) {
      return new Geo(x.size(2), x.size(3), w.size(2), w.size(3), y.size(2), y.size(3), s);
    }
  }

  static void forward(CpuParallel par, Tensor x, Tensor w, Conv2dSpec spec, Tensor out) {
    Geo g = Geo.of(x, w, out, spec);
    int cout = w.size(0), t = g.taps(), pp = g.pPad();
    float[] wt = new float[cout * t];
    MemorySegment.copy(segment(w), F, w.offset() * 4, wt, 0, cout * t);
    MemorySegment sx = segment(x), so = segment(out);
    par.forEachChunk(x.size(0), img -> {
      float[] col = Scratch.get().col(t * pp);
      gather(sx, x.offset() + img * g.h() * g.w(), g, col);
      long base = (out.offset() + img * cout * g.p()) * 4;
      int co = 0;
      for (; co + 4 <= cout; co += 4) four(wt, co, t, col, pp, g.p(), so, base + (long) co * g.p() * 4);
      for (; co < cout; co++) one(wt, co, t, col, pp, g.p(), so, base + (long) co * g.p() * 4);
    });
  }

  /** col[t·pp + p] = the input under tap t for output position p (0 in the padding, and for p ≥ P). */
  private static void gather(MemorySegment sx, long off, Geo g, float[] col) {
    int pp = g.pPad();
    java.util.Arrays.fill(col, 0, g.taps() * pp, 0f);
    Conv2dSpec s = g.s();
    for (int ky = 0; ky < g.kh(); ky++)
      for (int kx = 0; kx < g.kw(); kx++) {
        int row = (ky * g.kw() + kx) * pp;
        for (int oy = 0; oy < g.ho(); oy++) {
          int iy = oy * s.strideH() - s.padTop() + ky;
          if (iy < 0 || iy >= g.h()) continue;
          long rowOff = off + (long) iy * g.w();
          for (int ox = 0; ox < g.wo(); ox++) {
            int ix = ox * s.strideW() - s.padLeft() + kx;
            if (ix >= 0 && ix < g.w()) col[row + oy * g.wo() + ox] = sx.getAtIndex(F, rowOff + ix);
          }
        }
      }
  }

  /** Output channels co..co+3 of one image: out[co + i, p] = Σ_t w[co + i, t]·col[t, p], t ascending. */
  private static void four(float[] wt, int co, int t, float[] col, int pp, int p, MemorySegment so, long at) {
    long plane = (long) p * 4;
    for (int j = 0; j < p; j += L) {
      FloatVector a0 = FloatVector.zero(S), a1 = a0, a2 = a0, a3 = a0;
      for (int k = 0, w0 = co * t; k < t; k++, w0++) {
        FloatVector c = FloatVector.fromArray(S, col, k * pp + j);
        a0 = FloatVector.broadcast(S, wt[w0]).fma(c, a0);
        a1 = FloatVector.broadcast(S, wt[w0 + t]).fma(c, a1);
        a2 = FloatVector.broadcast(S, wt[w0 + 2 * t]).fma(c, a2);
        a3 = FloatVector.broadcast(S, wt[w0 + 3 * t]).fma(c, a3);
      }
      VectorMask<Float> m = S.indexInRange(j, p);
      long o = at + j * 4L;
      a0.intoMemorySegment(so, o, NATIVE, m);
      a1.intoMemorySegment(so, o + plane, NATIVE, m);
      a2.intoMemorySegment(so, o + 2 * plane, NATIVE, m);
      a3.intoMemorySegment(so, o + 3 * plane, NATIVE, m);
    }
  }

  /** One output channel, as {@link #four}. */
  private static void one(float[] wt, int co, int t, float[] col, int pp, int p, MemorySegment so, long at) {
    for (int j = 0; j < p; j += L) {
      FloatVector a = FloatVector.zero(S);
      for (int k = 0; k < t; k++) a = FloatVector.broadcast(S, wt[co * t + k]).fma(FloatVector.fromArray(S, col, k * pp + j), a);
      a.intoMemorySegment(so, at + j * 4L, NATIVE, S.indexInRange(j, p));
    }
  }

  static void backwardWeight(CpuParallel par, Tensor x, Tensor gy, Conv2dSpec spec, Tensor gw) {
    Geo g = Geo.of(x, gw, gy, spec);
    int n = x.size(0), cout = gw.size(0), t = g.taps(), pp = g.pPad(), part = cout * t * L;
    int chunks = (n + IMAGES_PER_CHUNK - 1) / IMAGES_PER_CHUNK;
    float[] parts = new float[chunks * part];
    MemorySegment sx = segment(x), sg = segment(gy);
    par.forEachChunk(chunks, ch -> {
      Scratch own = Scratch.get();
      float[] col = own.col(t * pp), gyRow = own.gy(pp);
      int i1 = (int) Math.min(n, (ch + 1) * IMAGES_PER_CHUNK), base = (int) ch * part;
      for (int img = (int) ch * IMAGES_PER_CHUNK; img < i1; img++) {
        gather(sx, x.offset() + (long) img * g.h() * g.w(), g, col);
        for (int co = 0; co < cout; co++) {
          MemorySegment.copy(sg, F, (gy.offset() + ((long) img * cout + co) * g.p()) * 4, gyRow, 0, g.p());
          java.util.Arrays.fill(gyRow, g.p(), pp, 0f);
          for (int k = 0; k < t; k++) {
            int at = base + (co * t + k) * L;
            FloatVector acc = FloatVector.fromArray(S, parts, at);
            for (int j = 0; j < pp; j += L) acc = FloatVector.fromArray(S, gyRow, j).fma(FloatVector.fromArray(S, col, k * pp + j), acc);
            acc.intoArray(parts, at);
          }
        }
      }
    });
    MemorySegment so = segment(gw);
    for (int e = 0; e < cout * t; e++) {
      float sum = 0;
      for (int ch = 0; ch < chunks; ch++)
        for (int lane = 0; lane < L; lane++) sum += parts[ch * part + e * L + lane];
      so.setAtIndex(F, gw.offset() + e, sum);
    }
  }

  /** Per-thread buffers: contents are scratch, written before they are read within a call. */
  private static final class Scratch {
    private static final ThreadLocal<Scratch> PER_THREAD = ThreadLocal.withInitial(Scratch::new);
    private float[] col = new float[0], gy = new float[0];

    static Scratch get() { return PER_THREAD.get(); }

    float[] col(int n) { return col.length >= n ? col : (col = new float[n]); }

    float[] gy(int n) { return gy.length >= n ? gy : (gy = new float[n]); }
  }
}
