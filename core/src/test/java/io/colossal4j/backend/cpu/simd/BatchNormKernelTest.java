package io.colossal4j.backend.cpu.simd;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The f32 batch-norm kernels ({@link BatchNormKernel}, through {@code SimdKernels} on 2 threads) against the
 * reference kernels (ScalarBatchNorm, f64 on the same values), on shapes with one value per image and channel
 * (rank 2), odd trailing sizes that leave vector tails (7×7, 13), runs longer than one fold (600 > 256) and a
 * single channel; with and without the affine w, b; inputs with a large common offset (mean 20, sd 1), which the
 * two-pass variance must not cancel away.
 *
 * <p>Tolerances: every kernel sum is a vector of f32 partial sums over at most 256 values (then folded into a
 * double), so a channel's sums carry a relative error of at most 256·u (u = 2^-24, about 1.5e-5) of the sum of
 * magnitudes. mean, var, y and gx are checked to 1e-4·(1 + |reference|): the statistics' error (≤ 256·u times
 * Σ|x|/m, about 3·256·u for these inputs) passes through (x − mean)·r·w with r ≤ 1 and |w| ≤ 2; gw and gb, sums
 * over m values, to 4·256·u·Σ|terms| plus that same 1e-4 relative. A wrong channel, image or term misses by O(1).
 */
class BatchNormKernelTest {
  private static final int[][] SHAPES = {{6, 3}, {4, 2, 7, 7}, {3, 5, 13}, {2, 3, 600}, {5, 1, 3, 3}, {8, 16, 14, 14}};

  @Test void matchesTheReferenceKernels() {
    Random rnd = new Random(5);
    try (CpuBackend fast = CpuBackend.create(2); CpuBackend ref = CpuBackend.reference()) {
      for (int[] dims : SHAPES)
        for (boolean affine : new boolean[] {true, false})
          for (double offset : new double[] {0, 20}) {
            Shape xs = Shape.of(dims);
            int c = dims[1];
            float[] x = random(rnd, (int) xs.numel(), offset, 1), gy = random(rnd, (int) xs.numel(), 0, 1);
            float[] w = affine ? random(rnd, c, 1, 0.5) : null, b = affine ? random(rnd, c, 0, 1) : null;
            String what = xs + (affine ? " affine" : " plain") + " offset " + offset;
            Outputs got = run(fast, DType.F32, xs, x, gy, w, b), want = run(ref, DType.F64, xs, x, gy, w, b);
            close(what + " mean", got.mean, want.mean);
            close(what + " var", got.var, want.var);
            close(what + " y", got.y, want.y);
            close(what + " gx", got.gx, want.gx);
            if (affine) {
              double[] absGb = new double[c], absGw = new double[c];
              long s = xs.numel() / ((long) dims[0] * c);
              for (int i = 0; i < x.length; i++) {
                int ch = (int) (i / s % c);
                absGb[ch] += Math.abs(gy[i]);
                absGw[ch] += Math.abs(gy[i] * (x[i] - want.mean[ch]) / Math.sqrt(want.var[ch] + 1e-5));
              }
              sums(what + " gw", got.gw, want.gw, absGw);
              sums(what + " gb", got.gb, want.gb, absGb);
            }
          }
    }
  }

  private record Outputs(double[] y, double[] mean, double[] var, double[] gx, double[] gw, double[] gb) {}

  private static Outputs run(CpuBackend be, DType dt, Shape xs, float[] x, float[] gy, float[] w, float[] b) {
    Shape cs = Shape.of(xs.dim(1));
    Tensor tx = of(x, xs, dt, be), tg = of(gy, xs, dt, be), tw = w == null ? null : of(w, cs, dt, be), tb = b == null ? null : of(b, cs, dt, be);
    Tensor y = Tensor.empty(xs, dt, be), mean = Tensor.empty(cs, dt, be), var = Tensor.empty(cs, dt, be), gx = Tensor.empty(xs, dt, be);
    Tensor gw = w == null ? null : Tensor.empty(cs, dt, be), gb = b == null ? null : Tensor.empty(cs, dt, be);
    be.kernels().batchNormTrain(tx, tw, tb, 1e-5, y, mean, var);
    be.kernels().batchNormTrainBackward(tg, tx, tw, mean, var, 1e-5, gx, gw, gb);
    return new Outputs(y.toDoubleArray(), mean.toDoubleArray(), var.toDoubleArray(), gx.toDoubleArray(),
        gw == null ? null : gw.toDoubleArray(), gb == null ? null : gb.toDoubleArray());
  }

  private static void close(String what, double[] got, double[] want) {
    for (int i = 0; i < got.length; i++) {
      int at = i;
      assertTrue(Math.abs(got[i] - want[i]) <= 1e-4 * (1 + Math.abs(want[i])), () -> what + "[" + at + "] = " + got[at] + ", reference " + want[at]);
    }
  }

  private static void sums(String what, double[] got, double[] want, double[] absSum) {
    for (int i = 0; i < got.length; i++) {
      int at = i;
      double tol = 4 * 256 * 0x1p-24 * absSum[i] + 1e-4 * (1 + Math.abs(want[i]));
      assertTrue(Math.abs(got[i] - want[i]) <= tol, () -> what + "[" + at + "] = " + got[at] + ", reference " + want[at] + " (tolerance " + tol + ")");
    }
  }

  private static Tensor of(float[] a, Shape s, DType dt, CpuBackend be) {
    if (dt == DType.F32) return Tensor.of(a, s, be);
    double[] d = new double[a.length];
    for (int i = 0; i < a.length; i++) d[i] = a[i];
    return Tensor.of(d, s, DType.F64, be);
  }

  private static float[] random(Random rnd, int n, double mean, double sd) {
    float[] a = new float[n];
    for (int i = 0; i < n; i++) a[i] = (float) (mean + sd * rnd.nextGaussian());
    return a;
  }
}
