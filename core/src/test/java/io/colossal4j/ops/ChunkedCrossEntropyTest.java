package io.colossal4j.ops;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.autograd.Autograd;
import io.colossal4j.backend.Backend;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.ops.Loss.CrossEntropyOptions;
import io.colossal4j.ops.Loss.Reduction;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;
import io.colossal4j.testing.GradCheck;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Cross-entropy on [N, C] logits through row chunks ({@link ChunkedCrossEntropy}) against its twin, the composite
 * it replaced (log-softmax, gather, negation, mask, sum, mean), built here from the public ops: the losses and the
 * logits' gradients must be equal bit for bit in f32 and bf16 (same kernels on the same rows; the chunks only
 * bound how many rows are live), with ignored targets, for every reduction, with one row per chunk, several
 * rows, a partial last chunk, and one chunk. And finite differences in f64.
 */
class ChunkedCrossEntropyTest {
  static final int N = 10, C = 7;
  private final Backend cpu = CpuBackend.create(1);

  private Tensor logits(DType dtype, long seed) {
    Random r = new Random(seed);
    double[] v = new double[N * C];
    for (int i = 0; i < v.length; i++) v[i] = r.nextGaussian() * 3;
    return Tensor.of(v, Shape.of(N, C), dtype, cpu).requiresGrad(true);
  }

  private Tensor targets() {
    long[] t = new long[N];
    for (int i = 0; i < N; i++) t[i] = i % 4 == 3 ? -100 : (i * 5) % C;   // rows 3 and 7 ignored
    return Tensor.of(t, Shape.of(N), DType.I64, cpu);
  }

  /** The composite the chunked op replaced, step for step. */
  private static Tensor twin(Tensor logits, Tensor targets, Reduction reduction) {
    Tensor valid = Arith.compareScalar(io.colossal4j.backend.BinaryOp.NE, targets, -100);
    Tensor safe = Arith.where(valid, targets, Tensor.scalar(0, targets.dtype(), targets.backend()));
    Tensor logp = Softmax.logSoftmax(logits, 1);
    Tensor validF = Arith.cast(valid, logits.dtype());
    Tensor perElement = Arith.mul(Arith.neg(Views.squeeze(Indexing.gather(logp, 1, Views.unsqueeze(safe, 1)), 1)), validF);
    return switch (reduction) {
      case NONE -> perElement;
      case SUM -> Reduce.sum(perElement);
      case MEAN -> Arith.div(Reduce.sum(perElement), Reduce.sum(validF));
    };
  }

  /** Loss values and the logits' gradient of sum(loss · ramp) (a ramp so NONE's rows get distinct upstream gradients). */
  private double[][] run(Tensor x, java.util.function.Function<Tensor, Tensor> loss) {
    Tensor l = loss.apply(x);
    Tensor ramp = Tensor.of(java.util.stream.IntStream.range(0, (int) l.numel()).mapToDouble(i -> 1 + 0.25 * i).toArray(), l.shape(), l.dtype(), cpu);
    Autograd.backward(Reduce.sum(Arith.mul(l, ramp)));
    return new double[][] {l.toDoubleArray(), x.grad().toDoubleArray()};
  }

  @Test void equalsTheCompositeBitForBit() {
    for (DType dtype : new DType[] {DType.F32, DType.BF16}) {
      for (Reduction red : Reduction.values()) {
        double[][] expected = run(logits(dtype, 1), x -> twin(x, targets(), red));
        for (int rows : new int[] {1, 3, 4, N}) {
          CrossEntropyOptions o = CrossEntropyOptions.DEFAULT.withReduction(red).withChunkBytes((long) rows * C * dtype.byteSize());
          double[][] got = run(logits(dtype, 1), x -> Loss.crossEntropy(x, targets(), o));
          String what = dtype + " " + red + " rows/chunk " + rows;
          assertArrayEquals(expected[0], got[0], 0.0, what + ": loss");
          assertArrayEquals(expected[1], got[1], 0.0, what + ": gradient");
        }
      }
    }
  }

  @Test void gradientsMatchFiniteDifferences() {
    Tensor t = targets();
    CrossEntropyOptions o = CrossEntropyOptions.DEFAULT.withChunkBytes(3L * C * 8);
    GradCheck.check(cpu, in -> Loss.crossEntropy(in[0], t, o), Shape.of(N, C));
  }

  @Test void aTargetOutOfRangeIsNamedAndAChunkBoundMustBePositive() {
    Tensor bad = Tensor.of(new long[] {0, 1, 2, 3, 4, 5, 6, 7, 0, 0}, Shape.of(N), DType.I64, cpu);
    TensorException e = assertThrows(TensorException.class, () -> Loss.crossEntropy(logits(DType.F32, 2), bad));
    assertTrue(e.getMessage().contains("neither a class in 0..6"), e.getMessage());
    assertThrows(TensorException.class, () -> CrossEntropyOptions.DEFAULT.withChunkBytes(0));
  }
}
