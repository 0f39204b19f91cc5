package io.colossal4j.ops;

import static io.colossal4j.testing.GradCheck.assertClose;
import static io.colossal4j.testing.GradCheck.check;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.backend.Backend;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;
import org.junit.jupiter.api.Test;

/**
 * Normalisation ops: gradients against finite differences (f64, GradCheck's tolerance) and forward values
 * derived by hand. Hand values involving square roots are written to 1e-9 or better and compared with
 * 1e-9; eps is 0 there unless the test is about eps.
 */
class NormGradTest {
  static final Backend CPU = CpuBackend.reference();
  static final double HAND = 1e-9;

  static Tensor t(Shape s, double... v) { return Tensor.of(v, s, DType.F64, CPU); }

  // ------------------------------------------------------------- layer norm

  @Test void layerNormByHand() {
    // mean 2.5, biased var 1.25: (x - 2.5) / sqrt(1.25) = +-1.5, +-0.5 over 1.1180339887
    Tensor x = t(Shape.of(1, 4), 1, 2, 3, 4);
    double[] z = {-1.3416407865, -0.4472135955, 0.4472135955, 1.3416407865};
    assertClose(z, Norm.layerNorm(x, null, null, 0).toDoubleArray(), HAND, 0, "plain");
    Tensor w = t(Shape.of(4), 2, 2, 2, 2), b = t(Shape.of(4), 1, 1, 1, 1);
    double[] affine = new double[4];
    for (int i = 0; i < 4; i++) affine[i] = 2 * z[i] + 1;
    assertClose(affine, Norm.layerNorm(x, w, b, 0).toDoubleArray(), HAND, 0, "affine");
    // eps enters under the root: var 1.25 + eps 0.75 = 2, so (x - 2.5)/sqrt(2)
    assertClose(new double[] {-1.0606601718, -0.3535533906, 0.3535533906, 1.0606601718},
        Norm.layerNorm(x, null, null, 0.75).toDoubleArray(), HAND, 0, "eps");
  }

  @Test void layerNormGradients() {
    check(CPU, a -> Norm.layerNorm(a[0], a[1], a[2], 1e-5), Shape.of(3, 5), Shape.of(5), Shape.of(5));
    check(CPU, a -> Norm.layerNorm(a[0], null, null, 1e-5), Shape.of(2, 3, 4));
    check(CPU, a -> Norm.layerNorm(a[0], a[1], null, 1e-5), Shape.of(4, 3), Shape.of(3));
    // non-contiguous input and weight
    check(CPU, a -> Norm.layerNorm(Views.transpose(a[0], 0, 1), Views.select(a[1], 1, 1), a[2], 1e-5),
        Shape.of(3, 4), Shape.of(3, 2), Shape.of(3));
  }

  /**
   * Without a gradient to record, layer norm returns its statistics and its dense copy of a strided input to
   * the pool at once: afterwards only x and y are allocated (the channels-first form copies x to channels-last).
   */
  @Test void layerNormWithoutGradKeepsOnlyItsOutput() {
    try (CpuBackend cpu = CpuBackend.create(1)) {
      long none = cpu.memoryStats().totalCurrent();
      Tensor x = Tensor.zeros(Shape.of(2, 3, 4, 5), DType.F32, cpu);
      long before = cpu.memoryStats().totalCurrent(), xBytes = before - none; // x's size class
      Tensor y = Norm.layerNorm2d(x, null, null, 1e-5);
      assertEquals(before + xBytes, cpu.memoryStats().totalCurrent(), "bytes allocated after layerNorm2d, want x's plus y's");
      y.storage().release();
      assertEquals(before, cpu.memoryStats().totalCurrent(), "bytes allocated after releasing y");
    }
  }

  @Test void layerNorm2dNormalisesChannels() {
    // pixel (0,0) has channels (1, 3): mean 2, var 1 -> (-1, 1); pixel (0,1) has (4, 6) -> (-1, 1)
    Tensor x = t(Shape.of(1, 2, 1, 2), 1, 4, 3, 6);
    assertClose(new double[] {-1, -1, 1, 1}, Norm.layerNorm2d(x, null, null, 0).toDoubleArray(), HAND, 0, "channels");
    check(CPU, a -> Norm.layerNorm2d(a[0], a[1], a[2], 1e-6), Shape.of(2, 3, 2, 3), Shape.of(3), Shape.of(3));
  }

  // ------------------------------------------------------------- RMS norm

  @Test void rmsNormByHandAndGradients() {
    // mean square of (3, 4) is 12.5; divided by sqrt(12.5) = 3.5355339059 and scaled by w
    Tensor x = t(Shape.of(1, 2), 3, 4);
    assertClose(new double[] {0.8485281374, 2 * 1.1313708499}, Norm.rmsNorm(x, t(Shape.of(2), 1, 2), 0).toDoubleArray(), HAND, 0, "rms");
    check(CPU, a -> Norm.rmsNorm(a[0], a[1], 1e-6), Shape.of(3, 4), Shape.of(4));
    check(CPU, a -> Norm.rmsNorm(Views.transpose(a[0], 0, 1), null, 1e-6), Shape.of(4, 3));
  }

  // ------------------------------------------------------------- batch norm

  @Test void batchNormTrainingUpdatesRunningStatsAsPyTorch() {
    // one channel, batch (1, 2, 3, 6): mean 3, biased var 14/4 = 3.5, unbiased 14/3
    Tensor x = t(Shape.of(4, 1), 1, 2, 3, 6);
    var running = new Norm.RunningStats(t(Shape.of(1), 0), t(Shape.of(1), 1));
    Tensor y = Norm.batchNormTrain(x, null, null, running, 0.1, 0);
    double s = Math.sqrt(3.5);
    assertClose(new double[] {-2 / s, -1 / s, 0, 3 / s}, y.toDoubleArray(), HAND, 0, "normalised with batch stats");
    // mean: 0.9 * 0 + 0.1 * 3; var: 0.9 * 1 + 0.1 * 14/3
    assertClose(new double[] {0.3}, running.mean().toDoubleArray(), 1e-15, 0, "running mean");
    assertClose(new double[] {1.3666666666666667}, running.var().toDoubleArray(), 1e-15, 0, "running var");
    // a second step blends again: 0.9 * 0.3 + 0.1 * 3
    Norm.batchNormTrain(x, null, null, running, 0.1, 0);
    assertClose(new double[] {0.57}, running.mean().toDoubleArray(), 1e-15, 0, "running mean, step 2");
  }

  @Test void batchNormTrainingStatsAreOverBatchAndSpace() {
    // channel 0 holds 0..3 over (N=2, H*W=2): mean 1.5, var 1.25; channel 1 holds 6, 8, 6, 8: mean 7, var 1
    Tensor x = t(Shape.of(2, 2, 1, 2), 0, 1, 6, 8, 2, 3, 6, 8);
    var running = new Norm.RunningStats(Tensor.zeros(Shape.of(2), DType.F32, CPU), Tensor.full(Shape.of(2), DType.F32, CPU, 1));
    Tensor y = Norm.batchNormTrain(x, null, t(Shape.of(2), 0, 5), running, 0.5, 0);
    double s = Math.sqrt(1.25);
    assertClose(new double[] {-1.5 / s, -0.5 / s, 4, 6, 0.5 / s, 1.5 / s, 4, 6}, y.toDoubleArray(), HAND, 0, "per-channel stats");
    // f32 buffers (so 1e-7): mean 0.5 * 1.5 and 0.5 * 7; unbiased var 5/3 and 4/3 blended with 1
    assertClose(new double[] {0.75, 3.5}, running.mean().toDoubleArray(), 1e-7, 0, "running mean (f32)");
    assertClose(new double[] {0.5 + 0.5 * 5 / 3.0, 0.5 + 0.5 * 4 / 3.0}, running.var().toDoubleArray(), 1e-7, 0, "running var (f32)");
  }

  @Test void batchNormEvalUsesRunningStats() {
    var running = new Norm.RunningStats(t(Shape.of(2), 1, -1), t(Shape.of(2), 4, 0.25));
    Tensor x = t(Shape.of(1, 2, 1, 1), 3, 0);
    // channel 0: (3 - 1)/2 * 2 + 0.5; channel 1: (0 + 1)/0.5 * -1 + 0
    assertClose(new double[] {2.5, -2}, Norm.batchNormEval(x, t(Shape.of(2), 2, -1), t(Shape.of(2), 0.5, 0), running, 0).toDoubleArray(), HAND, 0, "eval");
    check(CPU, a -> Norm.batchNormEval(a[0], a[1], a[2], running, 1e-5), Shape.of(3, 2, 2, 2), Shape.of(2), Shape.of(2));
  }

  @Test void batchNormTrainingGradients() {
    check(CPU, a -> Norm.batchNormTrain(a[0], a[1], a[2], null, 0.1, 1e-5), Shape.of(3, 2, 2, 3), Shape.of(2), Shape.of(2));
    check(CPU, a -> Norm.batchNormTrain(a[0], null, null, null, 0.1, 1e-5), Shape.of(5, 3));
    // running stats present (updated on every finite-difference evaluation, which must not affect gradients)
    var running = new Norm.RunningStats(Tensor.zeros(Shape.of(2), DType.F64, CPU), Tensor.full(Shape.of(2), DType.F64, CPU, 1));
    check(CPU, a -> Norm.batchNormTrain(Views.transpose(a[0], 2, 3), a[1], a[2], running, 0.1, 1e-5), Shape.of(2, 2, 3, 2), Shape.of(2), Shape.of(2));
  }

  @Test void halfPrecisionNormsComputeInF32AndRoundOnce() {
    // the inputs are exact in bf16, so the only error is the final rounding: bf16 keeps 8 significant
    // bits, so half an ulp is at most 2^-8 relative
    double[] v = {1, 2, 3, 6, -1, 0.5, 4, 8};
    Tensor x64 = t(Shape.of(4, 2), v), x16 = Tensor.of(v, Shape.of(4, 2), DType.BF16, CPU);
    Tensor bn = Norm.batchNormTrain(x16, null, null, null, 0.1, 1e-5);
    Tensor rms = Norm.rmsNorm(x16, null, 1e-6);
    assertEquals(DType.BF16, bn.dtype());
    assertEquals(DType.BF16, rms.dtype());
    assertClose(Norm.batchNormTrain(x64, null, null, null, 0.1, 1e-5).toDoubleArray(), bn.toDoubleArray(), 1e-6, 0x1p-8, "bf16 batch norm");
    assertClose(Norm.rmsNorm(x64, null, 1e-6).toDoubleArray(), rms.toDoubleArray(), 1e-6, 0x1p-8, "bf16 rms norm");
  }

  // ------------------------------------------------------------- group norm

  @Test void groupNormByHand() {
    // channels (1, 3) and (10, 14) over 1x2 pixels
    Tensor x = t(Shape.of(1, 2, 1, 2), 1, 3, 10, 14);
    assertClose(new double[] {-1, 1, -1, 1}, Norm.groupNorm(x, 2, null, null, 0).toDoubleArray(), HAND, 0, "2 groups");
    // one group: mean 7, var (36 + 16 + 9 + 49) / 4 = 27.5
    double s = Math.sqrt(27.5);
    assertClose(new double[] {-6 / s, -4 / s, 3 / s, 7 / s}, Norm.groupNorm(x, 1, null, null, 0).toDoubleArray(), HAND, 0, "1 group");
    assertClose(new double[] {-1, 1, 1, 3}, Norm.groupNorm(x, 2, t(Shape.of(2), 1, 1), t(Shape.of(2), 0, 2), 0).toDoubleArray(), HAND, 0, "affine");
  }

  @Test void groupNormGradients() {
    check(CPU, a -> Norm.groupNorm(a[0], 2, a[1], a[2], 1e-5), Shape.of(2, 4, 2, 3), Shape.of(4), Shape.of(4));
    check(CPU, a -> Norm.groupNorm(Views.transpose(a[0], 1, 3), 3, null, a[1], 1e-5), Shape.of(2, 2, 2, 3), Shape.of(3));
  }

  @Test void badInputNamesShapes() {
    Tensor x = Tensor.zeros(Shape.of(2, 6, 3, 3), DType.F32, CPU);
    var g = assertThrows(TensorException.class, () -> Norm.groupNorm(x, 4, null, null, 1e-5));
    assertTrue(g.getMessage().contains("6 channels") && g.getMessage().contains("4 groups"), g.getMessage());
    var w = assertThrows(TensorException.class, () -> Norm.layerNorm(x, Tensor.zeros(Shape.of(6), DType.F32, CPU), null, 1e-5));
    assertTrue(w.getMessage().contains("[3]") && w.getMessage().contains("[6]"), w.getMessage());
    var one = assertThrows(TensorException.class, () -> Norm.batchNormTrain(Tensor.zeros(Shape.of(1, 6), DType.F32, CPU), null, null, null, 0.1, 1e-5));
    assertTrue(one.getMessage().contains("more than 1 value per channel"), one.getMessage());
    var stats = assertThrows(TensorException.class, () -> Norm.batchNormEval(x, null, null,
        new Norm.RunningStats(Tensor.zeros(Shape.of(5), DType.F32, CPU), Tensor.zeros(Shape.of(5), DType.F32, CPU)), 1e-5));
    assertTrue(stats.getMessage().contains("5 channels"), stats.getMessage());
  }
}
