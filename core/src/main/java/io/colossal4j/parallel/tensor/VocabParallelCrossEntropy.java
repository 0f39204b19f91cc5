package io.colossal4j.parallel.tensor;

import io.colossal4j.backend.BinaryOp;
import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.distributed.Reduction;
import io.colossal4j.ops.Arith;
import io.colossal4j.ops.Indexing;
import io.colossal4j.ops.Loss;
import io.colossal4j.ops.OpSupport;
import io.colossal4j.ops.Reduce;
import io.colossal4j.ops.Views;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;
import java.util.Arrays;
import java.util.OptionalLong;

/**
 * Cross entropy over logits whose vocabulary is divided over the tp group (the sharded output of a
 * column-parallel LM head), without ever gathering the [..., V] logits (Megatron-LM's vocab-parallel cross
 * entropy). Per position, with m = max over all ranks' logits, S = Σ over all ranks of Σ exp(x − m) and
 * x_t the target's logit (taken on the rank that owns t, zero elsewhere, then summed):
 * loss = log S − (x_t − m), equal to −log softmax(x)[t]. Three small all-reduces per call (max, S, x_t),
 * each of one value per position; with label smoothing a fourth (the sum of the logits).
 *
 * <p>m is held constant in autograd: the loss does not depend on it (it cancels), it only keeps exp finite.
 * The sums use {@link TpComm#reduceFromRegion}: every rank computes the same loss, so the gradient of each
 * rank's partial sum is the gradient of the total, which is what that op's identity backward passes on.
 * The result: each rank's logits get softmax − one-hot restricted to its own vocabulary slice.
 */
public final class VocabParallelCrossEntropy {
  private VocabParallelCrossEntropy() {}

  public static Tensor apply(Tensor logits, Tensor targets, ProcessGroup tp) {
    return apply(logits, targets, tp, Loss.CrossEntropyOptions.DEFAULT);
  }

  /**
   * logits [..., V/p]: this rank's vocabulary slice; targets [...] (i64 or i32): global ids in [0, V) or the
   * ignore index. Options as {@link Loss#crossEntropy}: MEAN divides by the number of non-ignored targets.
   * Every rank returns the same value.
   */
  public static Tensor apply(Tensor logits, Tensor targets, ProcessGroup tp, Loss.CrossEntropyOptions options) {
    check(logits, targets);
    DType dt = logits.dtype();
    VocabSlice slice = VocabSlice.of(logits.size(-1), tp.rank(), tp.size());
    slice.requireInVocab("vocabParallelCrossEntropy", targets, OptionalLong.of(options.ignoreIndex()));
    Tensor max = TpComm.allReduced(Reduce.amax(logits.detach(), true, -1), tp, Reduction.MAX);
    Tensor shifted = Arith.sub(logits, max);
    Tensor logSumExp = Arith.log(TpComm.reduceFromRegion(Reduce.sum(Arith.exp(shifted), false, -1), tp));
    Tensor owned = slice.owned(targets);
    Tensor index = Views.unsqueeze(slice.localIds(targets, owned), -1);
    Tensor picked = Arith.mul(Views.squeeze(Indexing.gather(shifted, -1, index), -1), Arith.cast(owned, dt));
    Tensor perElement = Arith.sub(logSumExp, TpComm.reduceFromRegion(picked, tp));    // −log p[t]
    double eps = options.labelSmoothing();
    if (eps > 0) {
      // mean over the vocabulary of −log p[c] = log S − Σ_c (x_c − m) / V
      Tensor meanShifted = Arith.mulScalar(TpComm.reduceFromRegion(Reduce.sum(shifted, false, -1), tp), 1.0 / slice.vocab());
      perElement = Arith.add(Arith.mulScalar(perElement, 1 - eps), Arith.mulScalar(Arith.sub(logSumExp, meanShifted), eps));
    }
    Tensor valid = Arith.cast(Arith.compareScalar(BinaryOp.NE, targets, options.ignoreIndex()), dt);
    perElement = Arith.mul(perElement, valid);
    return switch (options.reduction()) {
      case NONE -> perElement;
      case SUM -> Reduce.sum(perElement);
      case MEAN -> Arith.div(Reduce.sum(perElement), Reduce.sum(valid));
    };
  }

  private static void check(Tensor logits, Tensor targets) {
    OpSupport.requireFloating("vocabParallelCrossEntropy", logits);
    if (targets.dtype() != DType.I64 && targets.dtype() != DType.I32)
      throw new TensorException("vocabParallelCrossEntropy: targets must be i64 or i32 class ids, got " + targets.dtype());
    if (logits.rank() < 1) throw new TensorException("vocabParallelCrossEntropy: logits must be [..., V/tp], got a scalar");
    Shape expected = Shape.of(Arrays.copyOf(logits.shape().toArray(), logits.rank() - 1));
    if (!targets.shape().equals(expected))
      throw new TensorException("vocabParallelCrossEntropy: targets " + targets.shape() + " do not match logits " + logits.shape()
          + " (expected " + expected + ": the logits' shape without the last, vocabulary dim)");
  }
}
