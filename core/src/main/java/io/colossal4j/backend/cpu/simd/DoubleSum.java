package io.colossal4j.backend.cpu.simd;

import static io.colossal4j.backend.cpu.CpuBackend.segment;

import io.colossal4j.backend.cpu.CpuParallel;
import io.colossal4j.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The sum of every element of a contiguous f32 tensor into an f64 scalar (the gradient-norm reduction: square,
 * then sum in double), as the reference kernel computes it: in double, from the f32 values. Fixed blocks of
 * {@link #BLOCK} elements, each bulk-copied into a heap buffer (lent by the backend's {@link ScratchPool}) and summed with eight double accumulators
 * (element i into accumulator i mod 8), the accumulators and then the blocks added in a fixed order, so the
 * result does not depend on the thread count or on JIT timing. Blocks are spread over the pool.
 */
final class DoubleSum {
  private DoubleSum() {}

  static final int BLOCK = 8192;
  private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;

  /** out (f64, one element) = Σ x. */
  static void sum(CpuParallel par, ScratchPool scratch, Tensor x, Tensor out) {
    long n = x.numel();
    int blocks = (int) ((n + BLOCK - 1) / BLOCK);
    double[] partial = new double[blocks];
    MemorySegment sx = segment(x);
    par.forEachChunk(blocks, b -> {
      int len = (int) Math.min(BLOCK, n - b * BLOCK);
      float[] buf = scratch.floats(BLOCK);
      MemorySegment.copy(sx, F, (x.offset() + b * BLOCK) * 4, buf, 0, len);
      partial[(int) b] = blockSum(buf, len);
      scratch.give(buf);
    });
    double s = 0;
    for (double p : partial) s += p;
    segment(out).setAtIndex(ValueLayout.JAVA_DOUBLE_UNALIGNED, out.offset(), s);
  }

  private static double blockSum(float[] v, int len) {
    double a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
    int i = 0;
    for (; i + 8 <= len; i += 8) {
      a0 += v[i]; a1 += v[i + 1]; a2 += v[i + 2]; a3 += v[i + 3];
      a4 += v[i + 4]; a5 += v[i + 5]; a6 += v[i + 6]; a7 += v[i + 7];
    }
    for (; i < len; i++) a0 += v[i];
    return ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7));
  }
}
