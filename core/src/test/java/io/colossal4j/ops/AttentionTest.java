package io.colossal4j.ops;

import static io.colossal4j.testing.GradCheck.assertClose;
import static io.colossal4j.testing.GradCheck.check;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.autograd.Autograd;
import io.colossal4j.backend.Backend;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.ops.Attention.Mask;
import io.colossal4j.ops.Attention.Options;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Rng;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;
import java.util.Arrays;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/**
 * Scaled dot-product attention: a 2-token case derived by hand for every option, finite-difference
 * gradients for every option, dropout reproducibility, and the fused-kernel seam. Hand values are exact
 * up to a few f64 roundings of exp/log, hence 1e-12.
 */
class AttentionTest {
  static final Backend CPU = CpuBackend.reference();
  static final double LN3 = Math.log(3);

  static Tensor f64(Shape s, double... v) { return Tensor.of(v, s, DType.F64, CPU); }

  static Tensor bool(Shape s, double... v) { return Tensor.of(v, s, DType.BOOL, CPU); }

  // two tokens, D = 2: with scale 1/sqrt(2), q0·k = [ln3, 0] (p = [3/4, 1/4]) and q1·k = [0, 0] (p = [1/2, 1/2])
  static final Tensor Q = f64(Shape.of(1, 1, 2, 2), Math.sqrt(2) * LN3, 0, 0, 0);
  static final Tensor K = f64(Shape.of(1, 1, 2, 2), 1, 0, 0, 1);
  static final Tensor V = f64(Shape.of(1, 1, 2, 2), 1, 2, 3, 4);

  static double[] sdpa(Options o) { return Attention.scaledDotProductAttention(Q, K, V, o).toDoubleArray(); }

  @Test void twoTokensByHand() {
    // row 0: 3/4·[1,2] + 1/4·[3,4] = [1.5, 2.5]; row 1: the mean of v's rows, [2, 3]
    assertClose(new double[] {1.5, 2.5, 2, 3}, sdpa(Options.DEFAULT), 1e-12, 0, "default scale 1/sqrt(D)");
    // causal: token 0 sees only key 0
    assertClose(new double[] {1, 2, 2, 3}, sdpa(Options.DEFAULT.withCausal(true)), 1e-12, 0, "causal");
    // bias ln3 on (0, 1) evens row 0 out
    Tensor bias = f64(Shape.of(2, 2), 0, LN3, 0, 0);
    assertClose(new double[] {2, 3, 2, 3}, sdpa(Options.DEFAULT.withBias(bias)), 1e-12, 0, "additive bias");
    assertClose(new double[] {2, 3, 2, 3}, sdpa(Options.DEFAULT.withMask(new Mask.Additive(bias))), 1e-12, 0, "additive mask");
    // scale 0: uniform attention everywhere
    assertClose(new double[] {2, 3, 2, 3}, sdpa(Options.DEFAULT.withScale(1e-300)), 1e-12, 0, "tiny scale");
    // boolean mask hiding key 0 from row 1, and everything from row 0 (that row becomes zeros, not NaN)
    Tensor allowed = bool(Shape.of(2, 2), 0, 0, 0, 1);
    assertClose(new double[] {0, 0, 3, 4}, sdpa(Options.DEFAULT.withMask(new Mask.Allowed(allowed))), 1e-12, 0, "bool mask");
  }

  @Test void cosineAttentionByHand() {
    // q̂ = [1, 0], k̂ = [[1, 0], [0, 1]] so cos = [1, 0]; logit scale s = ln3 gives p = [3/4, 1/4]
    Tensor q = f64(Shape.of(1, 1, 1, 2), 2, 0), k = f64(Shape.of(1, 1, 2, 2), 3, 0, 0, 5);
    Tensor logScale = f64(Shape.of(1, 1, 1), Math.log(LN3));
    assertClose(new double[] {1.5, 2.5}, Attention.scaledDotProductAttention(q, k, V, Options.DEFAULT.withCosine(logScale)).toDoubleArray(),
        1e-12, 0, "cosine");
    // log scale 10 is clamped to log(100): logits [100, 0]
    double p1 = 1 / (1 + Math.exp(100));
    assertClose(new double[] {1 + 2 * p1, 2 + 2 * p1},
        Attention.scaledDotProductAttention(q, k, V, Options.DEFAULT.withCosine(f64(Shape.of(1, 1, 1), 10))).toDoubleArray(), 1e-12, 0, "clamped");
  }

  @Test void gradientsPlainBroadcastAndBias() {
    check(CPU, t -> Attention.scaledDotProductAttention(t[0], t[1], t[2]), Shape.of(2, 2, 3, 4), Shape.of(2, 2, 5, 4), Shape.of(2, 2, 5, 3));
    // k and v shared across heads (broadcast batch dims), v with a lower rank
    check(CPU, t -> Attention.scaledDotProductAttention(t[0], t[1], t[2]), Shape.of(2, 2, 3, 4), Shape.of(2, 1, 5, 4), Shape.of(1, 5, 3));
    // learnable relative-position-style bias [H, Nq, Nk] and an explicit scale, q as a transposed view
    check(CPU, t -> Attention.scaledDotProductAttention(Views.transpose(t[0], 1, 2), t[1], t[2], Options.DEFAULT.withBias(t[3]).withScale(0.7)),
        Shape.of(1, 3, 2, 4), Shape.of(1, 2, 4, 4), Shape.of(1, 2, 4, 2), Shape.of(2, 3, 4));
  }

  @Test void gradientsMaskedAndCausal() {
    // row 1 fully masked: zero output and zero gradient, no NaN
    Tensor allowed = bool(Shape.of(3, 4), 1, 0, 1, 1, 0, 0, 0, 0, 1, 1, 0, 1);
    check(CPU, t -> Attention.scaledDotProductAttention(t[0], t[1], t[2], Options.DEFAULT.withMask(new Mask.Allowed(allowed))),
        Shape.of(2, 3, 2), Shape.of(2, 4, 2), Shape.of(2, 4, 3));
    check(CPU, t -> Attention.scaledDotProductAttention(t[0], t[1], t[2], Options.DEFAULT.withCausal(true).withMask(new Mask.Allowed(allowed))),
        Shape.of(2, 3, 2), Shape.of(2, 4, 2), Shape.of(2, 4, 3));
    Tensor additive = f64(Shape.of(2, 1, 1, 4), 0, -100, 0, -1.5, 0, 0, -3, 0);
    check(CPU, t -> Attention.scaledDotProductAttention(t[0], t[1], t[2], Options.DEFAULT.withCausal(true).withMask(new Mask.Additive(additive))),
        Shape.of(2, 2, 3, 2), Shape.of(2, 2, 4, 2), Shape.of(2, 2, 4, 2));
  }

  @Test void gradientsCosineWithLogitScaleAndBias() {
    check(CPU, t -> Attention.scaledDotProductAttention(t[0], t[1], t[2], Options.DEFAULT.withCosine(t[3]).withBias(t[4])),
        Shape.of(2, 2, 3, 4), Shape.of(2, 2, 3, 4), Shape.of(2, 2, 3, 4), Shape.of(2, 1, 1), Shape.of(2, 3, 3));
  }

  @Test void cosineAttentionWithZeroVectorsHasFiniteGradients() {
    // a zero query and a zero key (zero-padded tokens with zero bias): normalising them must not give NaN
    Tensor q = f64(Shape.of(1, 2, 2), 0, 0, 1, 2).requiresGrad(true);
    Tensor k = f64(Shape.of(1, 2, 2), 3, 1, 0, 0).requiresGrad(true);
    Tensor y = Attention.scaledDotProductAttention(q, k, V.detach().view(Shape.of(1, 2, 2), new long[] {4, 2, 1}, 0),
        Options.DEFAULT.withCosine(f64(Shape.of(1, 1, 1), 1.0)));
    Autograd.backward(Reduce.sum(Arith.square(y)));
    for (double g : q.grad().toDoubleArray()) assertTrue(Double.isFinite(g), "q grad " + g);
    for (double g : k.grad().toDoubleArray()) assertTrue(Double.isFinite(g), "k grad " + g);
    // the zero query attends uniformly (cos = 0 with every key)
    assertClose(new double[] {2, 3}, Arrays.copyOf(y.toDoubleArray(), 2), 1e-12, 0, "zero query");
  }

  @Test void fullyMaskedRowHasZeroGradient() {
    Tensor q = f64(Shape.of(2, 2), 1, 2, 3, 4).requiresGrad(true);
    Tensor y = Attention.scaledDotProductAttention(q, K.detach(), V.detach(),
        Options.DEFAULT.withMask(new Mask.Allowed(bool(Shape.of(2, 1), 0, 1))));
    Autograd.backward(Reduce.sum(y));
    double[] g = q.grad().toDoubleArray();
    assertArrayEquals(new double[] {0, 0}, new double[] {g[0], g[1]});
    for (double v : g) assertTrue(Double.isFinite(v));
  }

  @Test void attentionDropoutIsDropoutOnTheProbabilities() {
    Tensor q = f64(Shape.of(2, 3, 4), 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, -0.1, -0.2, -0.3, -0.4, -0.5, -0.6,
        -0.7, -0.8, -0.9, -1.0, -1.1, -1.2);
    Rng rng = new Rng(21);
    double[] y = Attention.scaledDotProductAttention(q, q, q, Options.DEFAULT.withDropout(0.5, rng)).toDoubleArray();
    Tensor p = Softmax.softmax(Arith.mulScalar(LinAlg.matmul(q, Views.transpose(q, 1, 2)), 0.5), -1);
    double[] expected = LinAlg.matmul(Dropout.dropout(p, 0.5, new Rng(21), true), q).toDoubleArray();
    assertClose(expected, y, 1e-12, 0, "dropout(p)·v");
    assertEquals(new Rng(21).take(18), 0);
    assertEquals((18 + 3) / 4, rng.counter(), "one number per probability");
    check(CPU, t -> Attention.scaledDotProductAttention(t[0], t[1], t[2], Options.DEFAULT.withDropout(0.3, new Rng(4))),
        Shape.of(2, 3, 2), Shape.of(2, 4, 2), Shape.of(2, 4, 2));
  }

  @Test void fusedKernelSeamMatchesTheComposite() {
    assertTrue(CPU.kernels().fusedAttention().isEmpty(), "the CPU backends have no fused kernel: the composite is used");
    ReferenceFusedAttention fake = new ReferenceFusedAttention();
    Options o = Options.DEFAULT.withCausal(true).withDropout(0.25, new Rng(8));
    Tensor[] a = leaves(), b = leaves();
    Tensor bias = f64(Shape.of(2, 3, 4), new java.util.Random(3).doubles(24).toArray());
    Tensor biasA = bias.detach().requiresGrad(true), biasB = bias.detach().requiresGrad(true);
    Tensor ya = Attention.attend(a[0], a[1], a[2], o.withBias(biasA).withDropout(0.25, new Rng(8)), Optional.of(fake));
    Tensor yb = Attention.attend(b[0], b[1], b[2], o.withBias(biasB).withDropout(0.25, new Rng(8)), Optional.empty());
    assertEquals(1, fake.forwards);
    assertClose(yb.toDoubleArray(), ya.toDoubleArray(), 1e-12, 0, "fused forward");
    Autograd.backward(Reduce.sum(Arith.square(ya)));
    Autograd.backward(Reduce.sum(Arith.square(yb)));
    assertEquals(1, fake.backwards);
    for (int i = 0; i < 3; i++) assertClose(b[i].grad().toDoubleArray(), a[i].grad().toDoubleArray(), 1e-12, 0, "grad of operand " + i);
    assertClose(biasB.grad().toDoubleArray(), biasA.grad().toDoubleArray(), 1e-12, 0, "grad of the bias");
    // a kernel that declines leaves the composite in charge; boolean masks never reach a fused kernel
    fake.accept = false;
    Attention.attend(a[0], a[1], a[2], Options.DEFAULT, Optional.of(fake));
    fake.accept = true;
    Attention.attend(a[0], a[1], a[2], Options.DEFAULT.withMask(new Mask.Allowed(bool(Shape.of(1, 4), 1, 1, 0, 1))), Optional.of(fake));
    assertEquals(1, fake.forwards);
  }

  private static Tensor[] leaves() {
    java.util.Random r = new java.util.Random(1);
    return new Tensor[] {f64(Shape.of(1, 2, 3, 2), r.doubles(12).toArray()).requiresGrad(true),
        f64(Shape.of(1, 1, 4, 2), r.doubles(8).toArray()).requiresGrad(true), f64(Shape.of(1, 1, 4, 3), r.doubles(12).toArray()).requiresGrad(true)};
  }

  @Test void badInputsAreClearErrors() {
    Tensor q = Tensor.zeros(Shape.of(2, 3, 4), DType.F32, CPU), k = Tensor.zeros(Shape.of(2, 5, 3), DType.F32, CPU);
    var e = assertThrows(TensorException.class, () -> Attention.scaledDotProductAttention(q, k, k));
    assertTrue(e.getMessage().contains("[2, 3, 4]") && e.getMessage().contains("[2, 5, 3]"), e.getMessage());
    var b = assertThrows(TensorException.class,
        () -> Attention.scaledDotProductAttention(q, q, q, Options.DEFAULT.withBias(Tensor.zeros(Shape.of(3, 2), DType.F32, CPU))));
    assertTrue(b.getMessage().contains("bias"), b.getMessage());
    assertThrows(TensorException.class, () -> Options.DEFAULT.withScale(0.5).withCosine(q));
    assertThrows(TensorException.class, () -> Options.DEFAULT.withDropout(0.1, null));
    var m = assertThrows(TensorException.class, () -> Options.DEFAULT.withMask(new Mask.Allowed(q)));
    assertTrue(m.getMessage().contains("Additive"), m.getMessage());
  }
}
