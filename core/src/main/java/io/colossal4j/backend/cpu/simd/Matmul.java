package io.colossal4j.backend.cpu.simd;

import static io.colossal4j.backend.cpu.CpuBackend.segment;

import io.colossal4j.backend.cpu.CpuParallel;
import io.colossal4j.backend.cpu.Strided;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * Batched f32 matmul on top of {@link Gemm}: out[..., M, N] (=|+=) a[..., M, K] · b[..., K, N] with any
 * operand strides (transposed and broadcast views included). An output whose columns are not unit-stride
 * but whose rows are (a transposed output view) is computed as outᵀ = bᵀ·aᵀ. Many small matrices are
 * spread over the pool one whole matrix per task; large ones run in turn with the GEMM itself parallel.
 */
final class Matmul {
  private Matmul() {}

  /** Below this many multiply-adds per matrix, a batch is parallelised across matrices instead of within. */
  private static final long SMALL = 1L << 22;

  /** False when the output layout has neither unit column nor unit row stride (caller falls back). */
  static boolean run(CpuParallel par, Tensor a, Tensor b, Tensor out, boolean accumulate) {
    int r = out.rank();
    int m = out.size(r - 2), n = out.size(r - 1), k = a.size(r - 1);
    long om = m == 1 ? n : out.stride(r - 2), on = n == 1 ? 1 : out.stride(r - 1);
    boolean swap = on != 1;
    if (swap && om != 1) return false;
    MemorySegment sa = segment(a), sb = segment(b), so = segment(out);
    long am = a.stride(r - 2), ak = a.stride(r - 1), bk = b.stride(r - 2), bn = b.stride(r - 1);
    int batches = (int) out.shape().numel(0, r - 2);
    if (batches == 1 && !swap && skinny(par, m, n, k, new Gemm.Mat(sa, a.offset(), am, ak), new Gemm.Mat(sb, b.offset(), bk, bn),
        new Gemm.Mat(so, out.offset(), om, 1), accumulate)) return true;
    long[] offA = new long[batches], offB = new long[batches], offO = new long[batches];
    int[] i = {0};
    Strided.forEach(Shape.of(Arrays.copyOf(out.shape().toArray(), r - 2)), Arrays.copyOf(a.strides(), r - 2), a.offset(),
        Arrays.copyOf(b.strides(), r - 2), b.offset(), Arrays.copyOf(out.strides(), r - 2), out.offset(), (x, y, z) -> {
          offA[i[0]] = x; offB[i[0]] = y; offO[i[0]++] = z;
        });
    CpuParallel.RangeBody one = (s, e) -> {
      for (long t = s; t < e; t++) {
        var ma = new Gemm.Mat(sa, offA[(int) t], am, ak);
        var mb = new Gemm.Mat(sb, offB[(int) t], bk, bn);
        CpuParallel inner = e - s == batches && (long) m * n * k >= SMALL ? par : null;
        if (swap) Gemm.gemm(inner, n, m, k, mb.transpose(), ma.transpose(), new Gemm.Mat(so, offO[(int) t], on, 1), accumulate);
        else Gemm.gemm(inner, m, n, k, ma, mb, new Gemm.Mat(so, offO[(int) t], om, 1), accumulate);
      }
    };
    if (batches > 1 && (long) m * n * k < SMALL) par.forRange(batches, 1, one);
    else one.run(0, batches);
    return true;
  }

  /**
   * A linear layer's product over many rows ({@link SkinnyGemm}): a row-major A (the forward, the input gradient), or
   * a transposed A whose own rows are the long dim (the weight gradient gᵀ·x). False when neither applies.
   */
  static boolean skinny(CpuParallel par, int m, int n, int k, Gemm.Mat a, Gemm.Mat b, Gemm.Mat c, boolean accumulate) {
    if (SkinnyGemm.fitsRowsTimes(m, n, k, a)) {
      SkinnyGemm.rowsTimes(par, m, n, k, a, b, null, c, accumulate);
      return true;
    }
    Gemm.Mat g = a.transpose();
    if (k >= 8 * SkinnyGemm.R && SkinnyGemm.fitsWeightGrad(k, m, n, g, b)) {
      SkinnyGemm.weightGrad(par, k, m, n, g, b, c, null, accumulate);
      return true;
    }
    return false;
  }

  /** out[m×n] = a[m×k]·b[k×n] + bias[n] through {@link SkinnyGemm#rowsTimes}, the bias its starting value; false if it does not fit. */
  static boolean bias(CpuParallel par, Tensor a, Tensor b, Tensor bias, Tensor out) {
    if (out.rank() != 2 || bias.rank() != 1 || (out.stride(1) != 1 && out.size(1) != 1)) return false;
    int m = out.size(0), n = out.size(1), k = a.size(1);
    var ma = mat(a);
    if (!SkinnyGemm.fitsRowsTimes(m, n, k, ma)) return false;
    float[] row = new float[n];
    MemorySegment sb = segment(bias);
    for (int j = 0; j < n; j++) row[j] = sb.getAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED, bias.offset() + j * bias.stride(0));
    SkinnyGemm.rowsTimes(par, m, n, k, ma, mat(b), row, new Gemm.Mat(segment(out), out.offset(), out.stride(0), 1), false);
    return true;
  }

  /** gw = gᵀ·x and gb = Σ_rows g through {@link SkinnyGemm#weightGrad}; false if it does not fit. */
  static boolean weightGrad(CpuParallel par, Tensor g, Tensor x, Tensor gw, Tensor gb) {
    if (gw.rank() != 2 || (gw.stride(1) != 1 && gw.size(1) != 1) || (gb != null && gb.rank() != 1)) return false;
    int m = g.size(0), n = g.size(1), k = x.size(1);
    var mg = mat(g);
    var mx = mat(x);
    if (!SkinnyGemm.fitsWeightGrad(m, n, k, mg, mx)) return false;
    var mb = gb == null ? null : new Gemm.Mat(segment(gb), gb.offset(), 0, gb.stride(0));
    SkinnyGemm.weightGrad(par, m, n, k, mg, mx, new Gemm.Mat(segment(gw), gw.offset(), gw.stride(0), 1), mb, false);
    return true;
  }

  /** A 2-D tensor as a GEMM operand (a size-1 dim's stride is normalised, so a one-column tensor counts as row-major). */
  private static Gemm.Mat mat(Tensor t) {
    return new Gemm.Mat(segment(t), t.offset(), t.size(0) == 1 ? t.size(1) : t.stride(0), t.size(1) == 1 ? 1 : t.stride(1));
  }
}
