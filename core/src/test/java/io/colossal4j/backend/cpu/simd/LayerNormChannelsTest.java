package io.colossal4j.backend.cpu.simd;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.autograd.Autograd;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.ops.Norm;
import io.colossal4j.ops.Views;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The channels-first layer norm ({@link LayerNormChannels}, and {@code Norm.layerNorm2d} on the fast backend,
 * which uses it) against the scalar reference: the kernel against {@code ScalarKernels.layerNormChannels}, and
 * the op's forward and backward against the reference backend's composition (move channels last, layer norm,
 * move back). Position counts below one vector, of exactly four vectors, and of four vectors plus a partial
 * tail; one channel; one position (where moving channels last copies nothing); a non-contiguous input.
 *
 * <p>Tolerances as in the conformance suite: the statistics are f32 sums of C terms, each within
 * (C + 8)·u·Σ|terms| of exact; y = x̂·w + b inherits that relative error (x in [−3, 5), w in [0.5, 1.5), b in
 * [−1, 1): the factor 4·8 covers |x̂| ≤ √C and the affine step); the backward's two channel sums 4× that; gw
 * and gb add N·P terms, so their bound grows with the row count.
 */
class LayerNormChannelsTest {
  private static final double U = 0x1p-24;
  private static final int L = RowOps.L;

  private static final int[][] SHAPES = {
      {2, 3, 5, 7}, {1, 96, 9, 9}, {3, 5, 4 * L}, {2, 7, 4 * L + 5}, {2, 1, 6, 6}, {4, 8, 1, 1}, {2, 4}, {1, 33, 3, 40}};

  @Test void kernelMatchesTheReference() {
    Random rnd = new Random(21);
    try (CpuBackend fast = CpuBackend.create(2)) {
      CpuBackend ref = CpuBackend.reference();
      int k = 0;
      for (int[] dims : SHAPES) {
        Shape s = Shape.of(dims);
        int c = dims[1], rows = Math.toIntExact(s.numel() / c);
        float[] x = uniform(rnd, Math.toIntExact(s.numel()), -3, 5), w = uniform(rnd, c, 0.5, 1.5), b = uniform(rnd, c, -1, 1);
        boolean affine = k++ % 2 == 0;
        float[] gy = uniform(rnd, x.length, -1, 1);
        float[][] got = kernel(fast, s, x, affine ? w : null, affine ? b : null, gy, rows);
        float[][] want = kernel(ref, s, x, affine ? w : null, affine ? b : null, gy, rows);
        double tol = 4 * (c + 8) * U * 8, tolRows = 4 * (rows + c + 8) * U * 8 * rows;
        String what = "layerNormChannels " + s + " affine=" + affine;
        assertClose(what + " y", got[0], want[0], tol, true);
        assertClose(what + " mean", got[1], want[1], tol, false);
        assertClose(what + " rstd", got[2], want[2], tol, true);
        assertClose(what + " gx", got[3], want[3], 4 * tol, true);
        assertClose(what + " gw", got[4], want[4], tolRows, false);
        assertClose(what + " gb", got[5], want[5], tolRows, false);
      }
    }
  }

  @Test void opForwardAndBackwardMatchTheReferenceComposition() {
    Random rnd = new Random(22);
    try (CpuBackend fast = CpuBackend.create(2)) {
      CpuBackend ref = CpuBackend.reference();
      for (int[] dims : SHAPES) {
        Shape s = Shape.of(dims);
        int c = dims[1];
        float[] x = uniform(rnd, Math.toIntExact(s.numel()), -3, 5), w = uniform(rnd, c, 0.5, 1.5), b = uniform(rnd, c, -1, 1);
        float[] gy = uniform(rnd, x.length, -1, 1);
        float[][] got = op(fast, s, x, w, b, gy), want = op(ref, s, x, w, b, gy);
        double tol = 4 * (c + 8) * U * 8, tolRows = 4 * (x.length / c + c + 8) * U * 8 * (x.length / c);
        String what = "layerNorm2d " + s;
        assertClose(what + " y", got[0], want[0], tol, true);
        assertClose(what + " gx", got[1], want[1], 4 * tol, true);
        assertClose(what + " gw", got[2], want[2], tolRows, false);
        assertClose(what + " gb", got[3], want[3], tolRows, false);
      }
    }
  }

  /** A channels-first input that is itself a permuted view (channels-last storage), as after a depthwise conv in NHWC. */
  @Test void nonContiguousInput() {
    Random rnd = new Random(23);
    int n = 2, c = 12, h = 5, wd = 9;
    float[] nhwc = uniform(rnd, n * h * wd * c, -3, 5), w = uniform(rnd, c, 0.5, 1.5), b = uniform(rnd, c, -1, 1);
    try (CpuBackend fast = CpuBackend.create(2)) {
      CpuBackend ref = CpuBackend.reference();
      Tensor xf = Views.permute(Tensor.of(nhwc, Shape.of(n, h, wd, c), fast), 0, 3, 1, 2);
      Tensor xr = Views.permute(Tensor.of(nhwc, Shape.of(n, h, wd, c), ref), 0, 3, 1, 2);
      float[] got = Norm.layerNorm2d(xf, Tensor.of(w, Shape.of(c), fast), Tensor.of(b, Shape.of(c), fast), 1e-6).toFloatArray();
      float[] want = Norm.layerNorm2d(xr, Tensor.of(w, Shape.of(c), ref), Tensor.of(b, Shape.of(c), ref), 1e-6).toFloatArray();
      assertClose("layerNorm2d of a permuted view", got, want, 4 * (c + 8) * U * 8, true);
    }
  }

  /** y, mean, rstd of the forward kernel; gx, gw, gb of the backward kernel from the reference's statistics. */
  private static float[][] kernel(CpuBackend cpu, Shape s, float[] x, float[] w, float[] b, float[] gy, int rows) {
    int c = s.dim(1);
    Tensor xt = Tensor.of(x, s, cpu), y = Tensor.empty(s, DType.F32, cpu), wt = w == null ? null : Tensor.of(w, Shape.of(c), cpu);
    Tensor mean = Tensor.empty(Shape.of(rows), DType.F32, cpu), rstd = Tensor.empty(Shape.of(rows), DType.F32, cpu);
    cpu.kernels().layerNormChannels(xt, wt, b == null ? null : Tensor.of(b, Shape.of(c), cpu), 1e-6, y, mean, rstd);
    // the backward from the reference's statistics, so that its comparison isolates the backward
    Tensor refMean = Tensor.empty(Shape.of(rows), DType.F32, cpu), refRstd = Tensor.empty(Shape.of(rows), DType.F32, cpu);
    CpuBackend.reference().kernels().layerNormChannels(Tensor.of(x, s, cpu), wt, null, 1e-6, Tensor.empty(s, DType.F32, cpu), refMean, refRstd);
    Tensor gx = Tensor.empty(s, DType.F32, cpu), gw = Tensor.full(Shape.of(c), DType.F32, cpu, 7), gb = Tensor.full(Shape.of(c), DType.F32, cpu, 7);
    cpu.kernels().layerNormChannelsBackward(Tensor.of(gy, s, cpu), xt, wt, refMean, refRstd, gx, gw, gb);
    return new float[][] {y.toFloatArray(), mean.toFloatArray(), rstd.toFloatArray(), gx.toFloatArray(), gw.toFloatArray(), gb.toFloatArray()};
  }

  /** The backward's gw and gb partials are cut by block count alone: bit-identical on 1 and 3 threads. */
  @Test void backwardBitIdenticalOnOneAndThreeThreads() {
    Random rnd = new Random(24);
    Shape s = Shape.of(3, 20, 11, 13);
    float[] x = uniform(rnd, Math.toIntExact(s.numel()), -3, 5), w = uniform(rnd, 20, 0.5, 1.5), b = uniform(rnd, 20, -1, 1);
    float[] gy = uniform(rnd, x.length, -1, 1);
    float[][] one, three;
    try (CpuBackend cpu = CpuBackend.create(1)) {
      one = kernel(cpu, s, x, w, b, gy, x.length / 20);
    }
    try (CpuBackend cpu = CpuBackend.create(3)) {
      three = kernel(cpu, s, x, w, b, gy, x.length / 20);
    }
    for (int i = 0; i < one.length; i++) org.junit.jupiter.api.Assertions.assertArrayEquals(one[i], three[i], "output " + i + " on 3 threads vs 1");
  }

  /** y, gx, gw, gb of Norm.layerNorm2d with upstream gradient gy. */
  private static float[][] op(CpuBackend cpu, Shape s, float[] x, float[] w, float[] b, float[] gy) {
    int c = s.dim(1);
    Tensor xt = Tensor.of(x, s, cpu).requiresGrad(true);
    Tensor wt = Tensor.of(w, Shape.of(c), cpu).requiresGrad(true), bt = Tensor.of(b, Shape.of(c), cpu).requiresGrad(true);
    Tensor y = Norm.layerNorm2d(xt, wt, bt, 1e-6);
    float[] yv = y.toFloatArray();
    Autograd.backward(y, Tensor.of(gy, s, cpu), false);
    return new float[][] {yv, xt.grad().toFloatArray(), wt.grad().toFloatArray(), bt.grad().toFloatArray()};
  }

  private static float[] uniform(Random rnd, int count, double lo, double hi) {
    float[] d = new float[count];
    for (int i = 0; i < count; i++) d[i] = (float) (lo + (hi - lo) * rnd.nextDouble());
    return d;
  }

  /** |got − want| ≤ tol, or ≤ tol·(1 + |want|) when relative. */
  private static void assertClose(String what, float[] got, float[] want, double tol, boolean relative) {
    assertTrue(got.length == want.length, what + ": " + got.length + " values, want " + want.length);
    for (int i = 0; i < want.length; i++) {
      double bound = relative ? tol * (1 + Math.abs(want[i])) : tol;
      double err = Math.abs((double) got[i] - want[i]);
      assertTrue(err <= bound, what + " at " + i + ": " + got[i] + " vs " + want[i] + " (error " + err + ", bound " + bound + ")");
    }
  }
}
