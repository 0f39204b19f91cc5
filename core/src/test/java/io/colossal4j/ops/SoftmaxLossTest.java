package io.colossal4j.ops;

import static io.colossal4j.testing.GradCheck.assertClose;
import static io.colossal4j.testing.GradCheck.check;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.backend.Backend;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.ops.Loss.CrossEntropyOptions;
import io.colossal4j.ops.Loss.Reduction;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;
import org.junit.jupiter.api.Test;

/**
 * Softmax, log-softmax and cross entropy: forwards derived by hand, gradients against finite differences.
 * Hand-derived values are compared at 1e-12 in f64 (a few roundings of log/exp) and 1e-6 in f32 (2^-24
 * relative rounding of values of order 1, accumulated over a handful of operations).
 */
class SoftmaxLossTest {
  static final Backend CPU = CpuBackend.reference();
  static final CrossEntropyOptions CE = CrossEntropyOptions.DEFAULT;

  static Tensor f64(Shape s, double... v) { return Tensor.of(v, s, DType.F64, CPU); }

  static Tensor targets(Shape s, long... v) { return Tensor.of(v, s, DType.I64, CPU); }

  @Test void softmaxByHandAndStableForHugeLogits() {
    double ln3 = Math.log(3);
    assertClose(new double[] {0.25, 0.75}, Softmax.softmax(f64(Shape.of(2), 0, ln3), 0).toDoubleArray(), 1e-12, 0, "softmax");
    Tensor huge = Tensor.of(new double[] {1000, 1000 + ln3}, Shape.of(2), DType.F32, CPU);
    assertClose(new double[] {0.25, 0.75}, Softmax.softmax(huge, 0).toDoubleArray(), 1e-4, 0, "no overflow at 1000");
    assertClose(new double[] {Math.log(0.25), Math.log(0.75)}, Softmax.logSoftmax(f64(Shape.of(1, 2), 5, 5 + ln3), 1).toDoubleArray(),
        1e-12, 0, "log_softmax");
    Tensor scalar = Tensor.scalar(3.5, DType.F64, CPU);
    assertEquals(1.0, Softmax.softmax(scalar, 0).item());
    assertEquals(0.0, Softmax.logSoftmax(scalar, -1).item());
  }

  @Test void softmaxGradientsOnNonContiguousInputs() {
    check(CPU, t -> Softmax.softmax(t[0], 1), Shape.of(3, 5));
    check(CPU, t -> Softmax.softmax(Views.transpose(t[0], 0, 1), 1), Shape.of(4, 3));
    check(CPU, t -> Softmax.logSoftmax(Views.transpose(t[0], 0, 2), 0), Shape.of(2, 3, 4));
    check(CPU, t -> Softmax.softmax(Views.narrow(t[0], 1, 1, 3), -1), Shape.of(2, 5));
    check(CPU, t -> Softmax.logSoftmax(Views.expand(t[0], 3, 4), 0), Shape.of(1, 4));
  }

  @Test void twoClassCrossEntropyWithSmoothingByHand() {
    double ln2 = Math.log(2), ln3 = Math.log(3), eps = 0.2;
    // sample 0: p = [1/4, 3/4], target 1; sample 1 ignored; sample 2: p = [2/3, 1/3], target 0
    Tensor logits = f64(Shape.of(3, 2), 0, ln3, 7, -2, ln2, 0);
    Tensor t = targets(Shape.of(3), 1, -100, 0);
    double nll0 = Math.log(4.0 / 3), smooth0 = (Math.log(4) + Math.log(4.0 / 3)) / 2;
    double nll2 = Math.log(1.5), smooth2 = (Math.log(1.5) + ln3) / 2;
    double l0 = (1 - eps) * nll0 + eps * smooth0, l2 = (1 - eps) * nll2 + eps * smooth2;
    CrossEntropyOptions o = CE.withLabelSmoothing(eps);
    assertClose(new double[] {l0, 0, l2}, Loss.crossEntropy(logits, t, o.withReduction(Reduction.NONE)).toDoubleArray(), 1e-12, 0, "none");
    assertClose(new double[] {l0 + l2}, new double[] {Loss.crossEntropy(logits, t, o.withReduction(Reduction.SUM)).item()}, 1e-12, 0, "sum");
    // the ignored sample is not in the denominator: mean over 2, not 3
    assertClose(new double[] {(l0 + l2) / 2}, new double[] {Loss.crossEntropy(logits, t, o).item()}, 1e-12, 0, "mean");
    assertClose(new double[] {nll0}, new double[] {Loss.crossEntropy(f64(Shape.of(2), 0, ln3), targets(Shape.scalar(), 1)).item()},
        1e-12, 0, "unbatched [C] logits");
  }

  @Test void crossEntropyGradients() {
    Tensor t = targets(Shape.of(4), 2, -100, 0, 2);
    for (Reduction r : Reduction.values()) {
      check(CPU, x -> Loss.crossEntropy(x[0], t, CE.withReduction(r)), Shape.of(4, 3));
      check(CPU, x -> Loss.crossEntropy(x[0], t, CE.withReduction(r).withLabelSmoothing(0.1)), Shape.of(4, 3));
    }
    // [N, C, d1] with a custom ignore index, and logits as a transposed view
    Tensor t2 = targets(Shape.of(2, 3), 1, 7, 0, 3, 3, 7);
    check(CPU, x -> Loss.crossEntropy(x[0], t2, CE.withIgnoreIndex(7).withLabelSmoothing(0.3)), Shape.of(2, 4, 3));
    check(CPU, x -> Loss.crossEntropy(Views.transpose(x[0], 1, 2), t2, CE.withIgnoreIndex(7)), Shape.of(2, 3, 4));
  }

  @Test void softTargets() {
    check(CPU, x -> Loss.crossEntropySoft(x[0], x[1], Reduction.MEAN, 0.1), Shape.of(3, 4), Shape.of(3, 4));
    check(CPU, x -> Loss.crossEntropySoft(x[0], x[1], Reduction.NONE, 0), Shape.of(2, 3, 2), Shape.of(2, 3, 2));
    // one-hot probability targets give the same loss as the class indices, smoothing included
    Tensor logits = f64(Shape.of(2, 3), 0.3, -1, 2, 1, 0.5, -0.2);
    Tensor oneHot = f64(Shape.of(2, 3), 0, 0, 1, 1, 0, 0);
    double hard = Loss.crossEntropy(logits, targets(Shape.of(2), 2, 0), CE.withLabelSmoothing(0.25)).item();
    assertEquals(hard, Loss.crossEntropySoft(logits, oneHot, Reduction.MEAN, 0.25).item(), 1e-12);
  }

  @Test void badTargetsAreClearErrors() {
    Tensor logits = f64(Shape.of(2, 3), 0, 0, 0, 0, 0, 0);
    var e = assertThrows(TensorException.class, () -> Loss.crossEntropy(logits, targets(Shape.of(2), 1, 3)));
    assertTrue(e.getMessage().contains("0..2") && e.getMessage().contains("index 3"), e.getMessage());
    var s = assertThrows(TensorException.class, () -> Loss.crossEntropy(logits, targets(Shape.of(3), 1, 1, 1)));
    assertTrue(s.getMessage().contains("[3]") && s.getMessage().contains("[2, 3]"), s.getMessage());
    var d = assertThrows(TensorException.class, () -> Loss.crossEntropy(logits, f64(Shape.of(2), 1, 1)));
    assertTrue(d.getMessage().contains("crossEntropySoft"), d.getMessage());
    assertThrows(TensorException.class, () -> CE.withLabelSmoothing(1.5));
    // every target ignored: 0/0, NaN as in PyTorch
    assertTrue(Double.isNaN(Loss.crossEntropy(logits, targets(Shape.of(2), -100, -100)).item()));
  }
}
