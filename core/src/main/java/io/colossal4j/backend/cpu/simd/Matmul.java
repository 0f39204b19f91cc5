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
}
