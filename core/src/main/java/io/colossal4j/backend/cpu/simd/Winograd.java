package io.colossal4j.backend.cpu.simd;

import static io.colossal4j.backend.cpu.CpuBackend.segment;
import static io.colossal4j.backend.cpu.simd.Gemm.L;
import static io.colossal4j.backend.cpu.simd.Gemm.MR;
import static io.colossal4j.backend.cpu.simd.Gemm.NR;
import static io.colossal4j.backend.cpu.simd.Gemm.S;

import io.colossal4j.backend.Conv2dSpec;
import io.colossal4j.backend.cpu.CpuParallel;
import io.colossal4j.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorShuffle;

/**
 * Forward 3×3 convolution, stride 1, no dilation, one group, by Winograd's minimal filtering F(2×2, 3×3):
 * each 2×2 block of outputs ("tile") is Aᵀ[Σ_c (G g_c Gᵀ) ⊙ (Bᵀ d_c B)]A, where d_c is the 4×4 input patch of
 * channel c and g_c the filter. The 16 element-wise products summed over channels are 16 GEMMs
 * U_ξ[Cout × Cin] · V_ξ[Cin × tiles] (ξ = the 16 positions of the 4×4 transformed tile): 2.25× fewer
 * multiply-adds than the direct convolution (16 per 4 outputs and channel instead of 36), for transforms
 * that cost a few adds per element.
 *
 * <p>Layout: U is packed once per call as the GEMM micro-kernel's A slivers ([ξ][Cout/8][Cin][8]); for each
 * tile row and each run of NR tiles along it, the input transform writes V straight into the micro-kernel's
 * B sliver layout ([ξ][Cin][NR]), vectorised over the NR tiles, and {@link MicroKernel#kernel} multiplies;
 * V, the products and the transformed filter (16·Cin·NR, 16·Cout·NR and 16·Cout·Cin floats: 128, 128 and
 * 256 KiB at 64 channels) stay in L2. To read a tile's patch columns (2x, 2x+1, 2x+2, 2x+3) as whole
 * vectors over consecutive tiles, the padded input is stored de-interleaved: even columns and odd columns
 * as separate rows.
 *
 * <p>Accuracy: the transforms have coefficients 0, ±½, ±1, so the result differs from the direct sum by
 * rounding only; the bound (stated and checked in {@code WinogradTest}) is a small multiple of the direct
 * convolution's. Images are spread over the pool (each with the buffers of the thread running it).
 */
final class Winograd {
  private Winograd() {}

  private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;

  /** Whether this kernel takes the call: 3×3, stride 1, dilation 1, one group, and wide enough to pay off. */
  static boolean applies(CpuParallel par, Tensor x, Tensor w, Conv2dSpec s, Tensor out) {
    return w.size(2) == 3 && w.size(3) == 3 && s.strideH() == 1 && s.strideW() == 1 && s.dilationH() == 1 && s.dilationW() == 1
        && s.groups() == 1 && x.size(1) >= 16 && w.size(0) >= 16 && out.size(2) >= 4 && out.size(3) >= 8 && x.size(0) >= par.threads();
  }

  /** Geometry: tiles of 2×2 outputs, the de-interleaved padded input rows (width we each for even and odd columns). */
  private record Geo(int cin, int h, int w, int cout, int coutPad, int ho, int wo, int pt, int pl, int tilesY, int tilesX,
                     int runs, int hp, int we) {
    static Geo of(Tensor x, Tensor w, Tensor out, Conv2dSpec s) {
      int ho = out.size(2), wo = out.size(3), tilesY = (ho + 1) / 2, tilesX = (wo + 1) / 2, runs = (tilesX + NR - 1) / NR;
      return new Geo(x.size(1), x.size(2), x.size(3), w.size(0), (w.size(0) + MR - 1) / MR * MR, ho, wo, s.padTop(), s.padLeft(),
          tilesY, tilesX, runs, 2 * tilesY + 2, runs * NR + 1);
    }

    int plane() { return hp * we; }
  }

  static void forward(CpuParallel par, Tensor x, Tensor w, Conv2dSpec spec, Tensor out) {
    Geo g = Geo.of(x, w, out, spec);
    float[] u = packFilter(segment(w), w.offset(), g);
    MemorySegment sx = segment(x), so = segment(out);
    par.forEachChunk(x.size(0), img -> {
      Scratch own = Scratch.get(g);
      deinterleave(sx, x.offset() + img * g.cin() * g.h() * g.w(), g, own.even, own.odd, own.line);
      long outImg = out.offset() + img * g.cout() * g.ho() * g.wo();
      for (int ty = 0; ty < g.tilesY(); ty++)
        for (int run = 0; run < g.runs(); run++) {
          inputTransform(own.even, own.odd, g, ty, run * NR, own.v);
          for (int xi = 0; xi < 16; xi++)
            for (int m = 0; m < g.coutPad(); m += MR)
              MicroKernel.kernel(u, (xi * g.coutPad() + m) * g.cin(), own.v, xi * g.cin() * NR, g.cin(), own.mSeg,
                  ((long) xi * g.coutPad() + m) * NR, NR, false);
          outputTransform(own.m, g, ty, run * NR, so, outImg, own.row);
        }
    });
  }

  /**
   * U_ξ = (G g Gᵀ)_ξ for every filter, G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]], computed in double and
   * packed as MR-row slivers: element (ξ, co, ci) at [(ξ·coutPad + co − co%8)·cin + ci·8 + co%8]; rows past
   * Cout are zero.
   */
  private static float[] packFilter(MemorySegment w, long wOff, Geo g) {
    float[] u = new float[16 * g.coutPad() * g.cin()];
    double[] t = new double[12];
    for (int co = 0; co < g.cout(); co++)
      for (int ci = 0; ci < g.cin(); ci++) {
        long base = wOff + ((long) co * g.cin() + ci) * 9;
        for (int j = 0; j < 3; j++) { // t = G g: 4 rows × 3 columns
          double g0 = w.getAtIndex(F, base + j), g1 = w.getAtIndex(F, base + 3 + j), g2 = w.getAtIndex(F, base + 6 + j);
          t[j] = g0;
          t[3 + j] = (g0 + g1 + g2) / 2;
          t[6 + j] = (g0 - g1 + g2) / 2;
          t[9 + j] = g2;
        }
        for (int r = 0; r < 4; r++) { // (G g) Gᵀ
          double a = t[3 * r], b = t[3 * r + 1], c = t[3 * r + 2];
          double[] row = {a, (a + b + c) / 2, (a - b + c) / 2, c};
          for (int q = 0; q < 4; q++)
            u[((4 * r + q) * g.coutPad() + co - co % MR) * g.cin() + ci * MR + co % MR] = (float) row[q];
        }
      }
    return u;
  }

  /**
   * even/odd[c, y, i] = padded image [c, y, 2i] / [c, y, 2i + 1]: rows and columns outside the image (the
   * padding, and the slack up to whole runs of NR tiles) are zero.
   */
  private static void deinterleave(MemorySegment x, long xOff, Geo g, float[] even, float[] odd, float[] line) {
    Arrays.fill(even, 0, g.cin() * g.plane(), 0f);
    Arrays.fill(odd, 0, g.cin() * g.plane(), 0f);
    Arrays.fill(line, 0f);
    int rows = Math.min(g.h(), g.hp() - g.pt()), cols = Math.min(g.w(), 2 * g.we() - g.pl());
    for (int c = 0; c < g.cin(); c++)
      for (int y = 0; y < rows; y++) {
        // the padded row in line[0 .. 2·we) (its padding stays zero), then split into even and odd lanes
        MemorySegment.copy(x, F, (xOff + ((long) c * g.h() + y) * g.w()) * 4, line, g.pl(), cols);
        int dst = c * g.plane() + (y + g.pt()) * g.we();
        for (int i = 0; i < g.we(); i += L) {
          FloatVector a = FloatVector.fromArray(S, line, 2 * i), b = FloatVector.fromArray(S, line, 2 * i + L);
          a.rearrange(UNZIP_EVEN, b).intoArray(even, dst + i, S.indexInRange(i, g.we()));
          a.rearrange(UNZIP_ODD, b).intoArray(odd, dst + i, S.indexInRange(i, g.we()));
        }
      }
  }

  /**
   * V_ξ[c, lane] = (Bᵀ d B)_ξ for the NR tiles (ty, x0 + lane), Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0],
   * [0, 1, 0, −1]]: rows first (s = d B per patch row), then columns. Patch row r of tile x reads padded row
   * 2ty + r at columns 2x .. 2x + 3 = even[x], odd[x], even[x + 1], odd[x + 1].
   */
  private static void inputTransform(float[] even, float[] odd, Geo g, int ty, int x0, float[] v) {
    for (int c = 0; c < g.cin(); c++) {
      int row0 = c * g.plane() + 2 * ty * g.we() + x0;
      for (int h = 0; h < NR; h += L) {
        int o = row0 + h;
        int we = g.we();
        FloatVector e0 = FloatVector.fromArray(S, even, o), o0 = FloatVector.fromArray(S, odd, o);
        FloatVector e0n = FloatVector.fromArray(S, even, o + 1), o0n = FloatVector.fromArray(S, odd, o + 1);
        FloatVector s00 = e0.sub(e0n), s01 = o0.add(e0n), s02 = e0n.sub(o0), s03 = o0.sub(o0n);
        o += we;
        FloatVector e1 = FloatVector.fromArray(S, even, o), o1 = FloatVector.fromArray(S, odd, o);
        FloatVector e1n = FloatVector.fromArray(S, even, o + 1), o1n = FloatVector.fromArray(S, odd, o + 1);
        FloatVector s10 = e1.sub(e1n), s11 = o1.add(e1n), s12 = e1n.sub(o1), s13 = o1.sub(o1n);
        o += we;
        FloatVector e2 = FloatVector.fromArray(S, even, o), o2 = FloatVector.fromArray(S, odd, o);
        FloatVector e2n = FloatVector.fromArray(S, even, o + 1), o2n = FloatVector.fromArray(S, odd, o + 1);
        FloatVector s20 = e2.sub(e2n), s21 = o2.add(e2n), s22 = e2n.sub(o2), s23 = o2.sub(o2n);
        o += we;
        FloatVector e3 = FloatVector.fromArray(S, even, o), o3 = FloatVector.fromArray(S, odd, o);
        FloatVector e3n = FloatVector.fromArray(S, even, o + 1), o3n = FloatVector.fromArray(S, odd, o + 1);
        FloatVector s30 = e3.sub(e3n), s31 = o3.add(e3n), s32 = e3n.sub(o3), s33 = o3.sub(o3n);
        int d = c * NR + h, st = g.cin() * NR; // V_ξ block stride
        s00.sub(s20).intoArray(v, d);
        s01.sub(s21).intoArray(v, d + st);
        s02.sub(s22).intoArray(v, d + 2 * st);
        s03.sub(s23).intoArray(v, d + 3 * st);
        s10.add(s20).intoArray(v, d + 4 * st);
        s11.add(s21).intoArray(v, d + 5 * st);
        s12.add(s22).intoArray(v, d + 6 * st);
        s13.add(s23).intoArray(v, d + 7 * st);
        s20.sub(s10).intoArray(v, d + 8 * st);
        s21.sub(s11).intoArray(v, d + 9 * st);
        s22.sub(s12).intoArray(v, d + 10 * st);
        s23.sub(s13).intoArray(v, d + 11 * st);
        s10.sub(s30).intoArray(v, d + 12 * st);
        s11.sub(s31).intoArray(v, d + 13 * st);
        s12.sub(s32).intoArray(v, d + 14 * st);
        s13.sub(s33).intoArray(v, d + 15 * st);
      }
    }
  }

  /**
   * y = Aᵀ m A for the NR tiles (ty, x0 + lane) of every output channel, Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]],
   * with m_ξ[co, lane] = Σ_c U_ξ[co, c]·V_ξ[c, lane]; the 2×2 outputs of each tile are interleaved into the
   * output rows through {@code row} [2 × 2·NR] (tiles past the image edge are dropped).
   */
  private static void outputTransform(float[] m, Geo g, int ty, int x0, MemorySegment out, long outOff, float[] row) {
    int st = g.coutPad() * NR;
    int rowsOut = Math.min(2, g.ho() - 2 * ty), colsOut = Math.min(2 * NR, g.wo() - 2 * x0);
    for (int co = 0; co < g.cout(); co++) {
      for (int h = 0; h < NR; h += L) {
        int d = co * NR + h;
        FloatVector m0 = FloatVector.fromArray(S, m, d), m1 = FloatVector.fromArray(S, m, d + st);
        FloatVector m2 = FloatVector.fromArray(S, m, d + 2 * st), m3 = FloatVector.fromArray(S, m, d + 3 * st);
        FloatVector m4 = FloatVector.fromArray(S, m, d + 4 * st), m5 = FloatVector.fromArray(S, m, d + 5 * st);
        FloatVector m6 = FloatVector.fromArray(S, m, d + 6 * st), m7 = FloatVector.fromArray(S, m, d + 7 * st);
        FloatVector m8 = FloatVector.fromArray(S, m, d + 8 * st), m9 = FloatVector.fromArray(S, m, d + 9 * st);
        FloatVector m10 = FloatVector.fromArray(S, m, d + 10 * st), m11 = FloatVector.fromArray(S, m, d + 11 * st);
        FloatVector m12 = FloatVector.fromArray(S, m, d + 12 * st), m13 = FloatVector.fromArray(S, m, d + 13 * st);
        FloatVector m14 = FloatVector.fromArray(S, m, d + 14 * st), m15 = FloatVector.fromArray(S, m, d + 15 * st);
        // Aᵀ over the rows of the 4×4 tile: t0 = m0 + m1 + m2 (row-wise), t1 = m1 − m2 − m3
        FloatVector t00 = m0.add(m4).add(m8), t01 = m1.add(m5).add(m9), t02 = m2.add(m6).add(m10), t03 = m3.add(m7).add(m11);
        FloatVector t10 = m4.sub(m8).sub(m12), t11 = m5.sub(m9).sub(m13), t12 = m6.sub(m10).sub(m14), t13 = m7.sub(m11).sub(m15);
        // then over the columns, into row[r][2·lane + b]
        spread(t00.add(t01).add(t02), t01.sub(t02).sub(t03), row, 2 * h);
        spread(t10.add(t11).add(t12), t11.sub(t12).sub(t13), row, 2 * NR + 2 * h);
      }
      for (int r = 0; r < rowsOut; r++)
        MemorySegment.copy(row, r * 2 * NR, out, F, (outOff + ((long) co * g.ho() + 2 * ty + r) * g.wo() + 2L * x0) * 4, colsOut);
    }
  }

  /** row[at + 2·lane] = a[lane], row[at + 2·lane + 1] = b[lane]: two lane interleaves. */
  private static void spread(FloatVector a, FloatVector b, float[] row, int at) {
    a.rearrange(ZIP_LO, b).intoArray(row, at);
    a.rearrange(ZIP_HI, b).intoArray(row, at + L);
  }

  /** Interleaves of two vectors, lanes 0 .. L/2 − 1 and L/2 .. L − 1 (negative source indexes take the second vector). */
  private static final VectorShuffle<Float> ZIP_LO = zip(0), ZIP_HI = zip(L / 2);

  /** The even and the odd lanes of two consecutive vectors (negative source indexes take the second vector). */
  private static final VectorShuffle<Float> UNZIP_EVEN = unzip(0), UNZIP_ODD = unzip(1);

  private static VectorShuffle<Float> unzip(int parity) {
    int[] idx = new int[L];
    for (int k = 0; k < L; k++) idx[k] = 2 * k + parity < L ? 2 * k + parity : 2 * k + parity - 2 * L;
    return VectorShuffle.fromArray(S, idx, 0);
  }

  private static VectorShuffle<Float> zip(int first) {
    int[] idx = new int[L];
    for (int k = 0; k < L; k++) idx[k] = first + k / 2 - (k % 2 == 1 ? L : 0);
    return VectorShuffle.fromArray(S, idx, 0);
  }

  /** Per-thread buffers, grown to the largest geometry seen; contents are scratch. */
  private static final class Scratch {
    private static final ThreadLocal<Scratch> PER_THREAD = ThreadLocal.withInitial(Scratch::new);
    float[] even = new float[0], odd = new float[0], v = new float[0], m = new float[0], line = new float[0];
    final float[] row = new float[4 * NR];
    MemorySegment mSeg = MemorySegment.ofArray(m);

    static Scratch get(Geo g) {
      Scratch s = PER_THREAD.get();
      int planes = g.cin() * g.plane();
      if (s.even.length < planes) { s.even = new float[planes]; s.odd = new float[planes]; }
      if (s.line.length < 2 * g.we() + 2 * L) s.line = new float[2 * g.we() + 2 * L];
      if (s.v.length < 16 * g.cin() * NR) s.v = new float[16 * g.cin() * NR];
      if (s.m.length < 16 * g.coutPad() * NR) { s.m = new float[16 * g.coutPad() * NR]; s.mSeg = MemorySegment.ofArray(s.m); }
      return s;
    }
  }
}
