package io.colossal4j.backend.cpu.simd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.backend.ReduceOp;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The full f32 → f64 sum ({@link DoubleSum}, reached through {@code SimdKernels.reduce} on 2 threads) against the
 * reference kernel (a sequential double sum), on lengths around the block size and the 8-accumulator tail, and on
 * a rank-3 tensor. Both sum the same f32 values in double, in different orders: each of the n − 1 additions
 * rounds by at most 2^-53 of the running magnitude, so they differ by at most 2·n·2^-53·Σ|x|. A dropped or doubled
 * element misses by |x| ≥ about 1e-3 of these N(0, 1) values, far above that. The result must also not depend on
 * the thread count (fixed blocks, fixed order): 1 and 2 threads agree exactly.
 */
class DoubleSumTest {
  @Test void matchesTheReferenceAndIgnoresTheThreadCount() {
    Random rnd = new Random(4);
    try (CpuBackend two = CpuBackend.create(2); CpuBackend one = CpuBackend.create(1); CpuBackend ref = CpuBackend.reference()) {
      for (int[] dims : new int[][] {{1}, {7}, {8191}, {8192}, {8193}, {70_001}, {3, 37, 129}}) {
        Shape s = Shape.of(dims);
        float[] v = new float[(int) s.numel()];
        double abs = 0;
        for (int i = 0; i < v.length; i++) { v[i] = (float) rnd.nextGaussian(); abs += Math.abs(v[i]); }
        double want = sum(ref, v, s), got = sum(two, v, s);
        double tol = 2.0 * v.length * 0x1p-53 * abs;
        assertTrue(Math.abs(got - want) <= tol, s + ": " + got + " vs reference " + want + " (tolerance " + tol + ")");
        assertEquals(got, sum(one, v, s), 0.0, s + ": 1 and 2 threads must agree exactly");
      }
    }
  }

  private static double sum(CpuBackend be, float[] v, Shape s) {
    int[] all = new int[s.rank()], ones = new int[s.rank()];
    for (int i = 0; i < all.length; i++) { all[i] = i; ones[i] = 1; }
    Tensor out = Tensor.empty(Shape.of(ones), DType.F64, be);
    be.kernels().reduce(ReduceOp.SUM, Tensor.of(v, s, be), all, out);
    return out.item();
  }
}
