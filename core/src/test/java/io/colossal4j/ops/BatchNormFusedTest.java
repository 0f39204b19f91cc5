package io.colossal4j.ops;

import static io.colossal4j.testing.GradCheck.assertClose;
import static io.colossal4j.testing.GradCheck.check;

import io.colossal4j.autograd.Autograd;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/**
 * Training-mode batch norm through the fused kernels (a backend whose {@code fusedBatchNorm()} is true: the SIMD
 * CPU backend). Gradients against finite differences (f64, which the SIMD backend hands to the reference kernel
 * implementations: this checks the op's backward rule, GradCheck's tolerance); and f32 results, running statistics
 * and gradients against the composed op on the reference backend (whose kernels report no fused batch norm).
 * f32 tolerance 1e-4·(1 + |value|): both sides compute in f32 or better from the same inputs of order 1; the
 * kernel-level bound is stated in BatchNormKernelTest, and 1e-4 leaves room for the composed side's own f32
 * elementwise rounding (a few u per op over about ten ops). A wrong statistic or term misses by O(1).
 */
class BatchNormFusedTest {
  static final CpuBackend FAST = CpuBackend.create(2);

  @AfterAll static void close() { FAST.close(); }

  @Test void gradientsMatchFiniteDifferences() {
    check(FAST, a -> Norm.batchNormTrain(a[0], a[1], a[2], null, 0.1, 1e-5), Shape.of(3, 2, 2, 3), Shape.of(2), Shape.of(2));
    check(FAST, a -> Norm.batchNormTrain(a[0], null, null, null, 0.1, 1e-5), Shape.of(5, 3));
    check(FAST, a -> Norm.batchNormTrain(a[0], a[1], null, null, 0.1, 1e-5), Shape.of(4, 3, 5), Shape.of(3));
    var running = new Norm.RunningStats(Tensor.zeros(Shape.of(2), DType.F64, FAST), Tensor.full(Shape.of(2), DType.F64, FAST, 1));
    check(FAST, a -> Norm.batchNormTrain(Views.transpose(a[0], 2, 3), a[1], a[2], running, 0.1, 1e-5), Shape.of(2, 2, 3, 2), Shape.of(2), Shape.of(2));
  }

  @Test void f32MatchesTheComposedOp() {
    Random rnd = new Random(2);
    CpuBackend ref = CpuBackend.reference();
    Shape xs = Shape.of(8, 3, 5, 7), cs = Shape.of(3);
    float[] x = random(rnd, (int) xs.numel(), 2), gy = random(rnd, (int) xs.numel(), 0), w = random(rnd, 3, 1), b = random(rnd, 3, 0);
    Result fused = run(FAST, xs, cs, x, gy, w, b), composed = run(ref, xs, cs, x, gy, w, b);
    String[] names = {"y", "gx", "gw", "gb", "running mean", "running var"};
    for (int i = 0; i < names.length; i++) assertClose(composed.values[i], fused.values[i], 1e-4, 1e-4, "fused batch norm " + names[i]);
  }

  private record Result(double[][] values) {}

  private static Result run(CpuBackend be, Shape xs, Shape cs, float[] x, float[] gy, float[] w, float[] b) {
    Tensor tx = Tensor.of(x, xs, be).requiresGrad(true), tw = Tensor.of(w, cs, be).requiresGrad(true), tb = Tensor.of(b, cs, be).requiresGrad(true);
    var running = new Norm.RunningStats(Tensor.zeros(cs, DType.F32, be), Tensor.full(cs, DType.F32, be, 1));
    Tensor y = Norm.batchNormTrain(tx, tw, tb, running, 0.1, 1e-5);
    Autograd.backward(y, Tensor.of(gy, xs, be), false);
    return new Result(new double[][] {y.toDoubleArray(), tx.grad().toDoubleArray(), tw.grad().toDoubleArray(), tb.grad().toDoubleArray(),
        running.mean().toDoubleArray(), running.var().toDoubleArray()});
  }

  private static float[] random(Random rnd, int n, double mean) {
    float[] a = new float[n];
    for (int i = 0; i < n; i++) a[i] = (float) (mean + rnd.nextGaussian());
    return a;
  }
}
