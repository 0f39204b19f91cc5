package io.colossal4j.backend.cpu.simd;

import static io.colossal4j.testing.GradCheck.assertClose;

import io.colossal4j.backend.cpu.CpuParallel;
import java.lang.foreign.MemorySegment;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The GEMM's edge tiles (fewer than MR rows, fewer than NR = 2 vectors of columns, narrower or wider than one
 * vector) against a double-precision triple loop, overwriting and accumulating, A row-major and transposed, with C embedded in a wider
 * row so that a store past the tile's valid columns would show. Tolerance: k ≤ 37 products of values in
 * [-1, 1], each f32 rounding ≤ 2^-24 relative, so |error| ≤ 37·2^-24·37 ≈ 8e-5 in the worst case; 1e-4.
 */
class GemmEdgeTest {
  @Test void edgeTilesMatchTheTripleLoop() {
    Random rnd = new Random(11);
    int[] ms = {1, 3, 8, 9, 13, 17};
    int[] ns = {1, 5, Gemm.L - 1, Gemm.L, Gemm.L + 1, Gemm.L + 7, Gemm.NR - 1, Gemm.NR, Gemm.NR + 3, 2 * Gemm.NR + Gemm.L + 2};
    try (CpuParallel par = new CpuParallel(2)) {
      for (int m : ms)
        for (int n : ns)
          for (int k : new int[] {1, 7, 37})
            for (boolean acc : new boolean[] {false, true})
              for (boolean transA : new boolean[] {false, true}) check(par, rnd, m, n, k, acc, transA);
    }
  }

  /** transA: A is stored as its transpose [k][m] and read through strides (1, m), the weight-gradient layout. */
  private static void check(CpuParallel par, Random rnd, int m, int n, int k, boolean accumulate, boolean transA) {
    int ldc = n + 5;   // C's rows sit in a wider buffer: the 5 columns after each row must stay untouched
    float[] a = rand(rnd, m * k), b = rand(rnd, k * n), c = rand(rnd, m * ldc);
    double[] expected = new double[m * ldc];
    for (int i = 0; i < m; i++)
      for (int j = 0; j < ldc; j++) {
        if (j >= n) { expected[i * ldc + j] = c[i * ldc + j]; continue; }
        double s = accumulate ? c[i * ldc + j] : 0;
        for (int p = 0; p < k; p++) s += (double) a[i * k + p] * b[p * n + j];
        expected[i * ldc + j] = s;
      }
    Gemm.Mat am = new Gemm.Mat(MemorySegment.ofArray(a), 0, k, 1);
    if (transA) {
      float[] at = new float[k * m];
      for (int i = 0; i < m; i++) for (int p = 0; p < k; p++) at[p * m + i] = a[i * k + p];
      am = new Gemm.Mat(MemorySegment.ofArray(at), 0, 1, m);
    }
    Gemm.gemm(par, m, n, k, am, new Gemm.Mat(MemorySegment.ofArray(b), 0, n, 1),
        new Gemm.Mat(MemorySegment.ofArray(c), 0, ldc, 1), accumulate);
    double[] actual = new double[c.length];
    for (int i = 0; i < c.length; i++) actual[i] = c[i];
    assertClose(expected, actual, 1e-4, 0, "gemm m=" + m + " n=" + n + " k=" + k + (accumulate ? " accumulating" : "") + (transA ? " transposed A" : ""));
  }

  /**
   * Packing is a copy: each MR-row sliver of a transposed A (strides (1, m), read with masked vector moves) holds
   * A[r0 + r][p] at [r0·kc + p·MR + r] bit for bit, zeros past the last row; m = 21 ends on a partial sliver.
   */
  @Test void transposedPackingCopiesExactly() {
    int m = 21, k = 13, slivers = (m + Gemm.MR - 1) / Gemm.MR;
    float[] at = rand(new Random(5), k * m);   // at[p·m + i] = A[i][p]
    float[] dst = new float[slivers * Gemm.MR * k];
    java.util.Arrays.fill(dst, Float.NaN);     // every slot must be written
    Gemm.packA(new Gemm.Mat(MemorySegment.ofArray(at), 0, 1, m), 0, m, 0, k, dst);
    for (int s = 0; s < slivers; s++)
      for (int p = 0; p < k; p++)
        for (int r = 0; r < Gemm.MR; r++) {
          int i = s * Gemm.MR + r;
          float want = i < m ? at[p * m + i] : 0f;
          float got = dst[s * Gemm.MR * k + p * Gemm.MR + r];
          if (Float.floatToRawIntBits(got) != Float.floatToRawIntBits(want))
            throw new AssertionError("packA transposed: row " + i + ", k " + p + ": got " + got + ", want " + want);
        }
  }

  private static float[] rand(Random rnd, int n) {
    float[] x = new float[n];
    for (int i = 0; i < n; i++) x[i] = (float) (2 * rnd.nextDouble() - 1);
    return x;
  }
}
