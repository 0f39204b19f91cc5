package io.colossal4j.autograd;

import static io.colossal4j.testing.GradCheck.check;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.backend.Backend;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.ops.Arith;
import io.colossal4j.ops.Dropout;
import io.colossal4j.ops.LinAlg;
import io.colossal4j.ops.Reduce;
import io.colossal4j.ops.Softmax;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Rng;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Activation checkpointing must be invisible in the numbers: a block with dropout gives bitwise-identical
 * outputs and gradients (inputs and parameters) with and without checkpointing, in f32, because the
 * recomputation repeats exactly the same operations on the same values with the same random stream.
 */
class CheckpointTest {
  static final Backend CPU = CpuBackend.reference();

  /** Parameters of a two-layer MLP block with dropout in between: x [3, 4] → [3, 4]. */
  record Block(Tensor w1, Tensor b1, Tensor w2) {
    static Block create(long seed) {
      Random r = new Random(seed);
      return new Block(param(r, 6, 4), param(r, 6), param(r, 4, 6));
    }

    Tensor forward(Tensor x, Rng rng) {
      Tensor h = Arith.gelu(LinAlg.linear(x, w1, b1));
      return Arith.add(LinAlg.linear(Dropout.dropout(h, 0.3, rng, true), w2, null), x);
    }

    List<Tensor> params() { return List.of(w1, b1, w2); }
  }

  static Tensor param(Random r, int... dims) {
    float[] v = new float[(int) Shape.of(dims).numel()];
    for (int i = 0; i < v.length; i++) v[i] = (float) r.nextGaussian();
    return Tensor.of(v, Shape.of(dims), CPU).requiresGrad(true);
  }

  /** One training step's numbers: output, gradient of the input leaf, parameter gradients, stream position. */
  record Run(double[] out, double[] gx, List<double[]> gp, long counterAfterForward, long counterAfterBackward) {}

  static Run run(boolean checkpointed, List<Rng> saved) {
    Block block = Block.create(1);
    Tensor x = param(new Random(2), 3, 4);
    Rng rng = new Rng(77);
    Tensor h = Arith.mulScalar(x, 2); // the block's input is a non-leaf
    Tensor y = checkpointed ? Checkpoint.apply(t -> block.forward(t[0], rng), saved.isEmpty() ? List.of() : List.of(rng), h)
        : block.forward(h, rng);
    long afterForward = rng.counter();
    Autograd.backward(Reduce.sum(Arith.square(y)));
    return new Run(y.toDoubleArray(), x.grad().toDoubleArray(), block.params().stream().map(p -> p.grad().toDoubleArray()).toList(),
        afterForward, rng.counter());
  }

  @Test void dropoutBlockIsBitwiseIdenticalWithAndWithoutCheckpointing() {
    Run plain = run(false, List.of());
    Run ckpt = run(true, List.of(new Rng(0)));
    assertArrayEquals(plain.out(), ckpt.out(), "outputs");
    assertArrayEquals(plain.gx(), ckpt.gx(), "input gradient");
    for (int i = 0; i < 3; i++) assertArrayEquals(plain.gp().get(i), ckpt.gp().get(i), "gradient of parameter " + i);
    assertEquals(plain.counterAfterForward(), ckpt.counterAfterForward());
    assertEquals(ckpt.counterAfterForward(), ckpt.counterAfterBackward(), "the stream is put back after recomputation");
    assertTrue(Arrays.stream(plain.out()).anyMatch(v -> v != 0));
  }

  @Test void forgettingTheStreamChangesTheGradients() {
    // the negative control: without restoring the stream the recomputation draws another mask
    Run plain = run(false, List.of());
    Run wrong = run(true, List.of());
    assertArrayEquals(plain.out(), wrong.out(), "the forward is the same either way");
    assertFalse(Arrays.equals(plain.gp().get(0), wrong.gp().get(0)), "but the gradients are not");
  }

  @Test void parametersGetGradientsWhenNoInputRequiresGrad() {
    Block block = Block.create(3);
    Tensor x = Tensor.of(new float[12], Shape.of(3, 4), CPU);
    Tensor y = Checkpoint.apply(t -> Arith.tanh(LinAlg.linear(Arith.addScalar(t[0], 1), block.w1(), block.b1())), x);
    assertTrue(y.requiresGrad());
    Autograd.backward(Reduce.sum(y));
    assertTrue(block.w1().grad() != null && block.b1().grad() != null);
    assertNull(x.grad());
    // the same numbers without checkpointing
    Block again = Block.create(3);
    Autograd.backward(Reduce.sum(Arith.tanh(LinAlg.linear(Arith.addScalar(x, 1), again.w1(), again.b1()))));
    assertArrayEquals(again.w1().grad().toDoubleArray(), block.w1().grad().toDoubleArray());
  }

  @Test void inputGradientsMatchFiniteDifferences() {
    check(CPU, t -> Checkpoint.apply(in -> Softmax.softmax(LinAlg.matmul(in[0], in[1]), -1), t[0], t[1]), Shape.of(3, 4), Shape.of(4, 2));
    // an input the block ignores, and a block that returns its input unchanged
    check(CPU, t -> Arith.add(Checkpoint.apply(in -> Arith.exp(in[0]), t[0], t[1]), Checkpoint.apply(in -> in[0], t[1])), Shape.of(2, 2), Shape.of(2, 2));
  }

  @Test void underNoGradItIsAPlainCall() {
    Tensor w = Tensor.of(new double[] {1, 2}, Shape.of(2), DType.F64, CPU).requiresGrad(true);
    Tensor y = GradMode.noGrad(() -> Checkpoint.apply(t -> Arith.mul(t[0], t[0]), w));
    assertFalse(y.requiresGrad());
    assertArrayEquals(new double[] {1, 4}, y.toDoubleArray());
  }
}
