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
 * Forward 3×3 convolution, stride 1, no dilation, one group, its input gradient (the same kind of convolution,
 * {@link #backwardInput}) and its weight gradient (the transforms taken the other way, {@link #backwardWeight}), by
 * Winograd's minimal filtering F(2×2, 3×3):
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

  /**
   * The weight gradient's transformed operands per band of tile rows, floats: 512 Ki (2 MiB; 8 tile rows at 64
   * channels and 56 × 56). Against a whole image per pass (28 tile rows, 7.3 MiB written, then read back), the band size
   * switched between alternating rounds of one JVM: 256 Ki 1.05–1.16×, 512 Ki 1.09–1.18×, 1 Mi 1.08× (the weight
   * gradient of 8 × 64 × 56², 2 threads); conv2d forward + backward 1.02–1.13×.
   */
  private static final int BAND_FLOATS = 512 << 10;

  /** Whether this kernel takes the call: 3×3, stride 1, dilation 1, one group, and wide enough to pay off. */
  static boolean applies(CpuParallel par, Tensor x, Tensor w, Conv2dSpec s, Tensor out) {
    return w.size(2) == 3 && w.size(3) == 3 && s.strideH() == 1 && s.strideW() == 1 && s.dilationH() == 1 && s.dilationW() == 1
        && s.groups() == 1 && x.size(1) >= 16 && w.size(0) >= 16 && out.size(2) >= 4 && out.size(3) >= 8 && x.size(0) >= par.threads();
  }

  /** Geometry: tiles of 2×2 outputs, the de-interleaved padded input rows (width we each for even and odd columns). */
  private record Geo(int cin, int h, int w, int cout, int coutPad, int ho, int wo, int pt, int pl, int tilesY, int tilesX,
                     int runs, int hp, int we) {
    /** The convolution of x into out's {@code cout} channels with padding s (top and left; out's size gives the rest). */
    static Geo of(Tensor x, int cout, Tensor out, Conv2dSpec s) {
      int ho = out.size(2), wo = out.size(3), tilesY = (ho + 1) / 2, tilesX = (wo + 1) / 2, runs = (tilesX + NR - 1) / NR;
      return new Geo(x.size(1), x.size(2), x.size(3), cout, (cout + MR - 1) / MR * MR, ho, wo, s.padTop(), s.padLeft(),
          tilesY, tilesX, runs, 2 * tilesY + 2, runs * NR + 1);
    }

    int plane() { return hp * we; }
  }

  static void forward(CpuParallel par, Tensor x, Tensor w, Conv2dSpec spec, Tensor out) {
    Geo g = Geo.of(x, w.size(0), out, spec);
    run(par, x, packFilter(segment(w), w.offset(), g, false), g, out);
  }

  /**
   * Whether {@link #backwardInput} takes the input gradient of such a convolution: the forward's conditions with the
   * channel counts swapped, and paddings of at most 2 (the gradient's convolution pads by 2 minus them).
   */
  static boolean appliesToInputGradient(CpuParallel par, Tensor gy, Tensor w, Conv2dSpec s, Tensor gx) {
    return w.size(2) == 3 && w.size(3) == 3 && s.strideH() == 1 && s.strideW() == 1 && s.dilationH() == 1 && s.dilationW() == 1
        && s.groups() == 1 && s.padTop() <= 2 && s.padBottom() <= 2 && s.padLeft() <= 2 && s.padRight() <= 2
        && w.size(0) >= 16 && w.size(1) >= 16 && gx.size(2) >= 4 && gx.size(3) >= 8 && gy.size(0) >= par.threads();
  }

  /**
   * gx = the input gradient of the stride-1 3×3 convolution y = x ⋆ w: itself a 3×3 convolution, of gy with every
   * filter flipped (rows and columns) and the channels swapped (w'[ci][co] = w[co][ci] flipped), gy padded by
   * 2 − the forward's padding on each side; so the forward's kernel computes it, the filter packed that way.
   */
  static void backwardInput(CpuParallel par, Tensor gy, Tensor w, Conv2dSpec s, Tensor gx) {
    Conv2dSpec t = new Conv2dSpec(1, 1, 2 - s.padTop(), 2 - s.padBottom(), 2 - s.padLeft(), 2 - s.padRight(), 1, 1, 1);
    Geo g = Geo.of(gy, w.size(1), gx, t);
    run(par, gy, packFilter(segment(w), w.offset(), g, true), g, gx);
  }

  /** Whether {@link #backwardWeight} takes the weight gradient: the forward's conditions. */
  static boolean appliesToWeightGradient(CpuParallel par, Tensor x, Tensor gy, Conv2dSpec s, Tensor gw) {
    return gw.size(2) == 3 && gw.size(3) == 3 && s.strideH() == 1 && s.strideW() == 1 && s.dilationH() == 1 && s.dilationW() == 1
        && s.groups() == 1 && x.size(1) >= 16 && gw.size(0) >= 16 && gy.size(2) >= 4 && gy.size(3) >= 8 && x.size(0) >= par.threads();
  }

  /**
   * gw = the weight gradient, through the forward's transforms taken the other way (the bilinear algorithm
   * transposed): since y = Aᵀ[(G g Gᵀ) ⊙ V]A per tile, dg = Gᵀ[(A dY Aᵀ) ⊙ V]G, summed over tiles and images. Per
   * image and band of tile rows ({@link #BAND_FLOATS}), V_ξ [T][Cin] (the input transform of the band's T tiles, T
   * counting whole runs of NR, vectorised over channels from a padded channels-last copy of the image, so that each
   * GEMM reads it row by row) and W_ξ = (A dY Aᵀ)_ξ [Cout][T] (zero for tiles past the output's edge), then 16 GEMMs
   * M_ξ += W_ξ·V_ξ over the band's tiles, while the band's operands are still in cache; the images
   * are split over the threads, each summing into its own M (from {@code pool}), and at the end Gᵀ M G per filter
   * pair. 2.25× fewer multiply-adds than the direct sum, as the forward.
   */
  static void backwardWeight(CpuParallel par, ScratchPool pool, Tensor x, Tensor gy, Conv2dSpec spec, Tensor gw) {
    int cout = gw.size(0), cin = x.size(1), n = x.size(0);
    Geo g = Geo.of(x, cout, gy, spec);
    // cinPad: whole NR-column slivers, as V_ξ is stored in the GEMM's packed-B layout
    int parts = Math.min(par.threads(), n), size = 16 * cout * cin, cinPad = (cin + NR - 1) / NR * NR;
    // tile rows per band: V_ξ and W_ξ of a band, 16·T·(cinPad + Cout) floats, are multiplied soon after they are written
    int band = Math.max(1, Math.min(g.tilesY(), BAND_FLOATS / (16 * g.runs() * NR * (cinPad + cout))));
    int tiles = band * g.runs() * NR;
    float[][] partial = new float[parts][];
    for (int p = 0; p < parts; p++) partial[p] = pool.floats(size);
    MemorySegment sx = segment(x), sg = segment(gy);
    try {
      par.forEachChunk(parts, p -> {
        float[] m = partial[(int) p];
        Arrays.fill(m, 0, size, 0f);
        MemorySegment mSeg = MemorySegment.ofArray(m);
        Scratch own = Scratch.PER_THREAD.get();   // not get(g): the forward's de-interleaved planes are not used here
        own.transformed(cinPad, cout, tiles, g.runs() * NR + 2 * L, (2 * g.tilesY() + 2) * (2 * g.runs() * NR + 2) * cinPad);
        for (long img = n * p / parts; img < n * (p + 1) / parts; img++) {
          channelsLast(sx, x.offset() + img * cin * g.h() * g.w(), g, cinPad, own.hwc);
          for (int ty0 = 0; ty0 < g.tilesY(); ty0 += band) {
            int ty1 = Math.min(g.tilesY(), ty0 + band), bandTiles = (ty1 - ty0) * g.runs() * NR;
            inputTransformChannels(own.hwc, g, cinPad, ty0, ty1, own.vt, own.t);
            gradientTransform(sg, gy.offset() + img * cout * g.ho() * g.wo(), g, ty0, ty1, own);
            for (int xi = 0; xi < 16; xi++)
              Gemm.gemmPackedB(cout, cin, bandTiles, new Gemm.Mat(own.wtSeg, (long) xi * cout * bandTiles, bandTiles, 1), own.vt,
                  xi * bandTiles * cinPad, new Gemm.Mat(mSeg, (long) xi * cout * cin, cin, 1), true);
          }
        }
      });
      float[] m = partial[0];
      for (int p = 1; p < parts; p++) for (int i = 0; i < size; i++) m[i] += partial[p][i];
      filterGradient(m, cout, cin, segment(gw), gw.offset());
    } finally {
      pool.give(partial);
    }
  }

  /**
   * The image padded and channels-last: hwc[(y·wide + x)·cinPad + c] = padded image [c, y, x] for y < 2·tilesY + 2 and
   * x < wide = 2·runs·NR + 2 (every patch of every tile, slack tiles included), zero outside the image and for the
   * channels past Cin.
   */
  private static void channelsLast(MemorySegment x, long xOff, Geo g, int cinPad, float[] hwc) {
    int rows = 2 * g.tilesY() + 2, wide = 2 * g.runs() * NR + 2;
    Arrays.fill(hwc, 0, rows * wide * cinPad, 0f);
    int yEnd = Math.min(g.h(), rows - g.pt()), xEnd = Math.min(g.w(), wide - g.pl());
    for (int c = 0; c < g.cin(); c++)
      for (int y = 0; y < yEnd; y++) {
        long src = xOff + ((long) c * g.h() + y) * g.w();
        int dst = ((y + g.pt()) * wide + g.pl()) * cinPad + c;
        for (int i = 0; i < xEnd; i++, dst += cinPad) hwc[dst] = x.getAtIndex(F, src + i);
      }
  }

  /**
   * V_ξ[t, c] = (Bᵀ d B)_ξ for every tile t = (ty − ty0)·runs·NR + x of a band of tile rows (ty0 ≤ ty < ty1,
   * x < runs·NR), stored as the GEMM's packed B (slivers of NR channels, each [T][NR]): at
   * vt[ξ·T·cinPad + (c / NR)·T·NR + t·NR + c % NR]. Vectorised over channels: per tile and block of L channels, the
   * rows of the 4×4 patch (s = d B, into {@code s}), then its columns.
   */
  private static void inputTransformChannels(float[] hwc, Geo g, int cinPad, int ty0, int ty1, float[] vt, float[] s) {
    int wide = 2 * g.runs() * NR + 2, span = g.runs() * NR, tiles = (ty1 - ty0) * span, block = tiles * cinPad;
    for (int ty = ty0; ty < ty1; ty++)
      for (int tx = 0; tx < span; tx++) {
        int t = (ty - ty0) * span + tx;
        for (int c = 0; c < cinPad; c += L) {
          for (int r = 0; r < 4; r++) patchRow(hwc, ((2 * ty + r) * wide + 2 * tx) * cinPad + c, cinPad, s, r * 4 * L);
          for (int q = 0; q < 4; q++) patchColumn(s, q * L, vt, q * block + (c / NR) * tiles * NR + t * NR + c % NR, 4 * block);
        }
      }
  }

  /** s[at + q·L + lane] = (d B)[q] for a patch row of four columns cinPad apart, vectorised over channels. */
  private static void patchRow(float[] hwc, int o, int cinPad, float[] s, int at) {
    FloatVector d0 = FloatVector.fromArray(S, hwc, o), d1 = FloatVector.fromArray(S, hwc, o + cinPad);
    FloatVector d2 = FloatVector.fromArray(S, hwc, o + 2 * cinPad), d3 = FloatVector.fromArray(S, hwc, o + 3 * cinPad);
    d0.sub(d2).intoArray(s, at);
    d1.add(d2).intoArray(s, at + L);
    d2.sub(d1).intoArray(s, at + 2 * L);
    d1.sub(d3).intoArray(s, at + 3 * L);
  }

  /** v[at + p·stride] = (Bᵀ s)[p] for column q of s (rows at s[q0 + r·4·L]). */
  private static void patchColumn(float[] s, int q0, float[] v, int at, int stride) {
    FloatVector s0 = FloatVector.fromArray(S, s, q0), s1 = FloatVector.fromArray(S, s, q0 + 4 * L);
    FloatVector s2 = FloatVector.fromArray(S, s, q0 + 8 * L), s3 = FloatVector.fromArray(S, s, q0 + 12 * L);
    s0.sub(s2).intoArray(v, at);
    s1.add(s2).intoArray(v, at + stride);
    s2.sub(s1).intoArray(v, at + 2 * stride);
    s1.sub(s3).intoArray(v, at + 3 * stride);
  }

  /**
   * W_ξ[co, t] = (A dY Aᵀ)_ξ for every tile t = (ty − ty0, x) of the band of tile rows [ty0, ty1) and every output
   * channel, A = [[1, 0], [1, 1], [1, −1], [0, −1]]: for the tile's 2×2 gradient block (rows a and b below), A dY
   * has rows (a), (a + b), (a − b), (−b), and each row (u, v) times Aᵀ is (u, u + v, u − v, −v). Lanes run over NR
   * tiles of a run; rows and columns past the output are zero.
   */
  private static void gradientTransform(MemorySegment gy, long gyOff, Geo g, int ty0, int ty1, Scratch own) {
    int cout = g.cout(), span = g.runs() * NR, tiles = (ty1 - ty0) * span;
    float[] e0 = own.ge0, o0 = own.go0, e1 = own.ge1, o1 = own.go1;
    for (int co = 0; co < cout; co++)
      for (int ty = ty0; ty < ty1; ty++) {
        gradientRow(gy, gyOff + ((long) co * g.ho() + 2 * ty) * g.wo(), g.wo(), span, own.line, e0, o0);
        if (2 * ty + 1 < g.ho()) gradientRow(gy, gyOff + ((long) co * g.ho() + 2 * ty + 1) * g.wo(), g.wo(), span, own.line, e1, o1);
        else { Arrays.fill(e1, 0, span, 0f); Arrays.fill(o1, 0, span, 0f); }
        int at = co * tiles + (ty - ty0) * span, block = cout * tiles;
        for (int h = 0; h < span; h += L) {
          FloatVector a0 = FloatVector.fromArray(S, e0, h), a1 = FloatVector.fromArray(S, o0, h);
          FloatVector b0 = FloatVector.fromArray(S, e1, h), b1 = FloatVector.fromArray(S, o1, h);
          gradientColumns(a0, a1, own.wt, at + h, block, 0);
          gradientColumns(a0.add(b0), a1.add(b1), own.wt, at + h, block, 4);
          gradientColumns(a0.sub(b0), a1.sub(b1), own.wt, at + h, block, 8);
          gradientColumns(b0.neg(), b1.neg(), own.wt, at + h, block, 12);
        }
      }
  }

  /** wt[(ξ0 + q)·block + at] for q = 0..3: (u, u + v, u − v, −v). */
  private static void gradientColumns(FloatVector u, FloatVector v, float[] wt, int at, int block, int xi0) {
    u.intoArray(wt, xi0 * block + at);
    u.add(v).intoArray(wt, (xi0 + 1) * block + at);
    u.sub(v).intoArray(wt, (xi0 + 2) * block + at);
    v.neg().intoArray(wt, (xi0 + 3) * block + at);
  }

  /** One gradient row's even and odd columns, e[x] = row[2x] and o[x] = row[2x + 1], zero past the row's end, x < span. */
  private static void gradientRow(MemorySegment gy, long rowOff, int wo, int span, float[] line, float[] e, float[] o) {
    Arrays.fill(line, wo, 2 * span, 0f);
    MemorySegment.copy(gy, F, rowOff * 4, line, 0, wo);
    for (int i = 0; i < span; i += L) {
      FloatVector a = FloatVector.fromArray(S, line, 2 * i), b = FloatVector.fromArray(S, line, 2 * i + L);
      a.rearrange(UNZIP_EVEN, b).intoArray(e, i);
      a.rearrange(UNZIP_ODD, b).intoArray(o, i);
    }
  }

  /**
   * gw[co, ci] = Gᵀ M[co, ci] G (M_ξ at m[(ξ·Cout + co)·Cin + ci]), in double: Gᵀ = [[1, ½, ½, 0], [0, ½, −½, 0],
   * [0, ½, ½, 1]], applied to M's columns, then to the rows of the result.
   */
  private static void filterGradient(float[] m, int cout, int cin, MemorySegment gw, long gwOff) {
    double[] t = new double[12];
    int block = cout * cin;
    for (int co = 0; co < cout; co++)
      for (int ci = 0; ci < cin; ci++) {
        int at = co * cin + ci;
        for (int q = 0; q < 4; q++) { // t = Gᵀ M: 3 rows × 4 columns
          double m0 = m[(q) * block + at], m1 = m[(4 + q) * block + at], m2 = m[(8 + q) * block + at], m3 = m[(12 + q) * block + at];
          t[q] = m0 + (m1 + m2) / 2;
          t[4 + q] = (m1 - m2) / 2;
          t[8 + q] = (m1 + m2) / 2 + m3;
        }
        long base = gwOff + (long) at * 9;
        for (int r = 0; r < 3; r++) { // (Gᵀ M) G
          double a = t[4 * r], b = t[4 * r + 1], c = t[4 * r + 2], d = t[4 * r + 3];
          gw.setAtIndex(F, base + 3 * r, (float) (a + (b + c) / 2));
          gw.setAtIndex(F, base + 3 * r + 1, (float) ((b - c) / 2));
          gw.setAtIndex(F, base + 3 * r + 2, (float) ((b + c) / 2 + d));
        }
      }
  }

  /** out = the convolution of x by the packed filter u, images spread over the pool. */
  private static void run(CpuParallel par, Tensor x, float[] u, Geo g, Tensor out) {
    MemorySegment sx = segment(x), so = segment(out);
    par.forEachChunk(x.size(0), img -> {
      Scratch own = Scratch.get(g);
      deinterleave(sx, x.offset() + img * g.cin() * g.h() * g.w(), g, own.even, own.odd, own.line);
      long outImg = out.offset() + img * g.cout() * g.ho() * g.wo();
      for (int ty = 0; ty < g.tilesY(); ty++)
        for (int run = 0; run < g.runs(); run++) {
          inputTransform(own.even, own.odd, g, ty, run * NR, own.v, own.t);
          for (int xi = 0; xi < 16; xi++)
            for (int m = 0; m < g.coutPad(); m += MR)
              MicroKernel.kernel(u, (xi * g.coutPad() + m) * g.cin(), own.v, xi * g.cin() * NR, g.cin(), own.mSeg,
                  ((long) xi * g.coutPad() + m) * NR, NR, false);
          outputTransform(own.m, g, ty, run * NR, so, outImg, own.row, own.t);
        }
    });
  }

  /**
   * U_ξ = (G g Gᵀ)_ξ for every filter, G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]], computed in double and
   * packed as MR-row slivers: element (ξ, co, ci) at [(ξ·coutPad + co − co%8)·cin + ci·8 + co%8]; rows past
   * Cout are zero. {@code flipped}: the filter of (co, ci) is w[ci][co] turned by 180° (w then holds [cin][cout][3][3]
   * of this convolution: the forward's filters, for its input gradient).
   */
  private static float[] packFilter(MemorySegment w, long wOff, Geo g, boolean flipped) {
    float[] u = new float[16 * g.coutPad() * g.cin()];
    double[] t = new double[12];
    for (int co = 0; co < g.cout(); co++)
      for (int ci = 0; ci < g.cin(); ci++) {
        long base = wOff + (flipped ? (long) ci * g.cout() + co : (long) co * g.cin() + ci) * 9;
        for (int j = 0; j < 3; j++) { // t = G g: 4 rows × 3 columns
          double g0, g1, g2;
          if (flipped) { // g[r][j] = w[2 − r][2 − j]
            g0 = w.getAtIndex(F, base + 8 - j);
            g1 = w.getAtIndex(F, base + 5 - j);
            g2 = w.getAtIndex(F, base + 2 - j);
          } else {
            g0 = w.getAtIndex(F, base + j);
            g1 = w.getAtIndex(F, base + 3 + j);
            g2 = w.getAtIndex(F, base + 6 + j);
          }
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
   * [0, 1, 0, −1]]: rows first (s = d B per patch row, into {@code s} [4 rows][4][NR]), then columns. Patch row r
   * of tile x reads padded row 2ty + r at columns 2x .. 2x + 3 = even[x], odd[x], even[x + 1], odd[x + 1].
   * Written as short methods over a few vectors each: one method holding all 32 would exceed what the JIT
   * keeps in registers and inlines (see {@link ChunkPasses}).
   */
  private static void inputTransform(float[] even, float[] odd, Geo g, int ty, int x0, float[] v, float[] s) {
    int st = g.cin() * NR; // V_ξ block stride
    for (int c = 0; c < g.cin(); c++) {
      int row0 = c * g.plane() + 2 * ty * g.we() + x0;
      for (int r = 0; r < 4; r++) rowTransform(even, odd, row0 + r * g.we(), s, r * 4 * NR);
      for (int q = 0; q < 4; q++) columnTransform(s, q * NR, v, q * st + c * NR, 4 * st);
    }
  }

  /** s[at + q·NR + lane] = (d B)[q] for the patch row starting at even/odd[o + lane]. */
  private static void rowTransform(float[] even, float[] odd, int o, float[] s, int at) {
    for (int h = 0; h < NR; h += L) {
      FloatVector e = FloatVector.fromArray(S, even, o + h), d = FloatVector.fromArray(S, odd, o + h);
      FloatVector en = FloatVector.fromArray(S, even, o + h + 1), dn = FloatVector.fromArray(S, odd, o + h + 1);
      e.sub(en).intoArray(s, at + h);
      d.add(en).intoArray(s, at + NR + h);
      en.sub(d).intoArray(s, at + 2 * NR + h);
      d.sub(dn).intoArray(s, at + 3 * NR + h);
    }
  }

  /** v[at + p·stride + lane] = (Bᵀ s)[p] for column q of s (rows at s[q0 + r·4·NR]). */
  private static void columnTransform(float[] s, int q0, float[] v, int at, int stride) {
    for (int h = 0; h < NR; h += L) {
      FloatVector s0 = FloatVector.fromArray(S, s, q0 + h), s1 = FloatVector.fromArray(S, s, q0 + 4 * NR + h);
      FloatVector s2 = FloatVector.fromArray(S, s, q0 + 8 * NR + h), s3 = FloatVector.fromArray(S, s, q0 + 12 * NR + h);
      s0.sub(s2).intoArray(v, at + h);
      s1.add(s2).intoArray(v, at + stride + h);
      s2.sub(s1).intoArray(v, at + 2 * stride + h);
      s1.sub(s3).intoArray(v, at + 3 * stride + h);
    }
  }

  /**
   * y = Aᵀ m A for the NR tiles (ty, x0 + lane) of every output channel, Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]],
   * with m_ξ[co, lane] = Σ_c U_ξ[co, c]·V_ξ[c, lane]: first over the tile's rows (into {@code t} [2][4][NR]),
   * then over its columns, the 2×2 outputs of each tile interleaved into the output rows through {@code row}
   * [2 × 2·NR] (tiles past the image edge are dropped).
   */
  private static void outputTransform(float[] m, Geo g, int ty, int x0, MemorySegment out, long outOff, float[] row, float[] t) {
    int st = g.coutPad() * NR;
    int rowsOut = Math.min(2, g.ho() - 2 * ty), colsOut = Math.min(2 * NR, g.wo() - 2 * x0);
    for (int co = 0; co < g.cout(); co++) {
      for (int q = 0; q < 4; q++) outputRows(m, co * NR + q * st, 4 * st, t, q * NR);
      outputColumns(t, 0, row, 0);
      outputColumns(t, 4 * NR, row, 2 * NR);
      for (int r = 0; r < rowsOut; r++)
        MemorySegment.copy(row, r * 2 * NR, out, F, (outOff + ((long) co * g.ho() + 2 * ty + r) * g.wo() + 2L * x0) * 4, colsOut);
    }
  }

  /** t[at + lane] = m0 + m1 + m2, t[at + 4·NR + lane] = m1 − m2 − m3, for m_p = m[o + p·stride + lane]. */
  private static void outputRows(float[] m, int o, int stride, float[] t, int at) {
    for (int h = 0; h < NR; h += L) {
      FloatVector m0 = FloatVector.fromArray(S, m, o + h), m1 = FloatVector.fromArray(S, m, o + stride + h);
      FloatVector m2 = FloatVector.fromArray(S, m, o + 2 * stride + h), m3 = FloatVector.fromArray(S, m, o + 3 * stride + h);
      m0.add(m1).add(m2).intoArray(t, at + h);
      m1.sub(m2).sub(m3).intoArray(t, at + 4 * NR + h);
    }
  }

  /** One output row of every tile: y0 = t0 + t1 + t2 and y1 = t1 − t2 − t3 (t_q = t[at + q·NR + lane]), interleaved into row. */
  private static void outputColumns(float[] t, int at, float[] row, int to) {
    for (int h = 0; h < NR; h += L) {
      FloatVector t0 = FloatVector.fromArray(S, t, at + h), t1 = FloatVector.fromArray(S, t, at + NR + h);
      FloatVector t2 = FloatVector.fromArray(S, t, at + 2 * NR + h), t3 = FloatVector.fromArray(S, t, at + 3 * NR + h);
      spread(t0.add(t1).add(t2), t1.sub(t2).sub(t3), row, to + 2 * h);
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
    final float[] row = new float[4 * NR], t = new float[16 * NR];
    MemorySegment mSeg = MemorySegment.ofArray(m);
    /**
     * The weight gradient's padded channels-last image, transformed input in the GEMM's packed-B layout
     * [16][cinPad/NR][T][NR] and output gradient [16][Cout][T], and gradient rows split in even and odd columns.
     */
    float[] hwc = new float[0], vt = new float[0], wt = new float[0], ge0 = new float[0], go0 = new float[0], ge1 = new float[0], go1 = new float[0];
    MemorySegment wtSeg = MemorySegment.ofArray(wt);

    /** Grows the weight gradient's buffers: T tiles, gradient rows of {@code span} even (odd) columns, the padded image. */
    void transformed(int cinPad, int cout, int tiles, int span, int image) {
      if (hwc.length < image) hwc = new float[image];
      if (vt.length < 16 * cinPad * tiles) vt = new float[16 * cinPad * tiles];
      if (wt.length < 16 * cout * tiles) { wt = new float[16 * cout * tiles]; wtSeg = MemorySegment.ofArray(wt); }
      if (ge0.length < span) { ge0 = new float[span]; go0 = new float[span]; ge1 = new float[span]; go1 = new float[span]; }
      if (line.length < 2 * span + 2 * L) line = new float[2 * span + 2 * L];
    }

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
