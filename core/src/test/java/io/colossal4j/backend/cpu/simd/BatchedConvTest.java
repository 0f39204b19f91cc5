package io.colossal4j.backend.cpu.simd;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.backend.Conv2dSpec;
import io.colossal4j.backend.UnaryOp;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The chunked im2col convolutions ({@link BatchedConv}: forward, backward input, backward weight) against the
 * scalar reference kernels in f64, on geometries with odd sizes, asymmetric padding, strides 2 and 3, dilation,
 * groups and depthwise, each run with the default chunk budget (every image in one chunk) and with budgets that
 * force one image per chunk and chunks of two with a short last chunk (the weight gradient accumulating across
 * chunks), on 2 threads.
 *
 * <p>Tolerance: the dot-product bound (len + 2)·u·Σ|terms| + 1 ulp with u = 2^-24, len the number of products per
 * output (K for the forward, (Cout/g)·kH·kW for the input gradient, N·P for the weight gradient) and Σ|terms| the
 * reference kernel run on |inputs|. Every output is a float sum of len float products, each rounding adding at
 * most u relative to the running sum of magnitudes; a wrong tap, image or group misses by a whole |term|.
 */
class BatchedConvTest {
  private record Case(int n, int cin, int h, int w, int cout, int kh, int kw, Conv2dSpec spec) {}

  private static final Case[] CASES = {
      new Case(5, 3, 13, 11, 5, 3, 3, new Conv2dSpec(2, 2, 0, 1, 0, 1, 1, 1, 1)),     // TF "same", stride 2
      new Case(7, 1, 28, 28, 16, 3, 3, Conv2dSpec.of(2, 1, 1, 1)),                    // the default job's first stem conv
      new Case(3, 16, 14, 14, 32, 3, 3, Conv2dSpec.of(2, 1, 1, 1)),                   // K = 144
      new Case(3, 32, 7, 7, 64, 3, 3, Conv2dSpec.of(2, 1, 1, 1)),                     // K = 288: two K blocks
      new Case(4, 6, 12, 10, 6, 3, 3, new Conv2dSpec(2, 3, 2, 1, 2, 0, 2, 2, 2)),     // strides 2×3, dilation 2, groups 2
      new Case(3, 8, 9, 9, 8, 5, 5, new Conv2dSpec(2, 2, 2, 2, 1, 3, 1, 1, 8)),       // depthwise, odd padding
      new Case(2, 5, 17, 19, 9, 7, 7, new Conv2dSpec(3, 3, 3, 3, 3, 3, 1, 1, 1)),     // 7×7 stride 3
      new Case(3, 4, 8, 8, 4, 4, 4, new Conv2dSpec(4, 4, 0, 0, 0, 0, 1, 1, 1)),       // patchify: stride = kernel
      new Case(2, 3, 5, 4, 2, 1, 1, new Conv2dSpec(2, 2, 1, 1, 1, 1, 1, 1, 1)),       // padding wider than the filter
  };

  @Test void matchesTheReferenceKernelsForEveryChunking() {
    Random rnd = new Random(11);
    try (CpuBackend fast = CpuBackend.create(2); CpuBackend ref = CpuBackend.reference()) {
      for (Case c : CASES) {
        Conv2dSpec s = c.spec();
        int ho = s.outH(c.h(), c.kh()), wo = s.outW(c.w(), c.kw()), k = c.cin() / s.groups() * c.kh() * c.kw(), p = ho * wo;
        float[] x = random(rnd, c.n() * c.cin() * c.h() * c.w()), w = random(rnd, c.cout() * k), gy = random(rnd, c.n() * c.cout() * p);
        Shape xs = Shape.of(c.n(), c.cin(), c.h(), c.w()), ws = Shape.of(c.cout(), c.cin() / s.groups(), c.kh(), c.kw()), ys = Shape.of(c.n(), c.cout(), ho, wo);
        Tensor xr = f64(x, xs, ref), wr = f64(w, ws, ref), gyr = f64(gy, ys, ref);
        double[] yRef = run(ref, ys, o -> ref.kernels().conv2d(xr, wr, s, o)), yAbs = run(ref, ys, o -> ref.kernels().conv2d(abs(ref, xr), abs(ref, wr), s, o));
        double[] gxRef = run(ref, xs, o -> ref.kernels().conv2dBackwardInput(gyr, wr, s, o));
        double[] gxAbs = run(ref, xs, o -> ref.kernels().conv2dBackwardInput(abs(ref, gyr), abs(ref, wr), s, o));
        double[] gwRef = run(ref, ws, o -> ref.kernels().conv2dBackwardWeight(xr, gyr, s, o));
        double[] gwAbs = run(ref, ws, o -> ref.kernels().conv2dBackwardWeight(abs(ref, xr), abs(ref, gyr), s, o));
        Tensor xf = Tensor.of(x, xs, fast), wf = Tensor.of(w, ws, fast), gyf = Tensor.of(gy, ys, fast);
        for (long budget : new long[] {BatchedConv.COL_BUDGET, (long) k * p, 2L * k * p}) {
          String what = c + " budget " + budget;
          Tensor y = Tensor.empty(ys, DType.F32, fast), gx = Tensor.empty(xs, DType.F32, fast), gw = Tensor.empty(ws, DType.F32, fast);
          BatchedConv.forward(fast.parallel(), xf, wf, s, y, budget);
          check(what + " forward", y, yRef, yAbs, k);
          BatchedConv.backwardInput(fast.parallel(), gyf, wf, s, gx, budget);
          check(what + " backward input", gx, gxRef, gxAbs, c.cout() / s.groups() * c.kh() * c.kw());
          BatchedConv.backwardWeight(fast.parallel(), xf, gyf, s, gw, budget);
          check(what + " backward weight", gw, gwRef, gwAbs, c.n() * p);
        }
        Tensor y = Tensor.empty(ys, DType.F32, fast);   // and through the backend's kernels
        fast.kernels().conv2d(xf, wf, s, y);
        check(c + " kernels().conv2d", y, yRef, yAbs, k);
      }
    }
  }

  private static void check(String what, Tensor got, double[] want, double[] absSum, int len) {
    float[] g = got.toFloatArray();
    for (int i = 0; i < g.length; i++) {
      double tol = (len + 2) * 0x1p-24 * absSum[i] + Math.ulp((float) Math.abs(want[i]));
      int at = i;
      assertTrue(Math.abs(g[i] - want[i]) <= tol, () -> what + ": element " + at + " is " + g[at] + ", reference " + want[at] + " (tolerance " + tol + ")");
    }
  }

  private interface Fill { void into(Tensor out); }

  private static double[] run(CpuBackend ref, Shape shape, Fill f) {
    Tensor o = Tensor.zeros(shape, DType.F64, ref);
    f.into(o);
    return o.toDoubleArray();
  }

  private static Tensor abs(CpuBackend ref, Tensor t) {
    Tensor o = Tensor.empty(t.shape(), DType.F64, ref);
    ref.kernels().unary(UnaryOp.ABS, t, o);
    return o;
  }

  private static Tensor f64(float[] a, Shape shape, CpuBackend ref) {
    double[] d = new double[a.length];
    for (int i = 0; i < a.length; i++) d[i] = a[i];
    return Tensor.of(d, shape, DType.F64, ref);
  }

  private static float[] random(Random rnd, int n) {
    float[] a = new float[n];
    for (int i = 0; i < n; i++) a[i] = (float) rnd.nextGaussian();
    return a;
  }
}
