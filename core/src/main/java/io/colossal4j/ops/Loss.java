package io.colossal4j.ops;

import io.colossal4j.backend.BinaryOp;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;

/**
 * Classification losses, composed from differentiable ops on top of {@link Softmax#logSoftmax} (so they
 * are stable for any logit magnitude and their gradients come for free).
 *
 * <p>Shapes (class dim 1, as PyTorch): logits [N, C] or [N, C, d1, ..., dk]; class-index targets
 * [N] or [N, d1, ..., dk]; probability targets the logits' shape. A single sample [C] with a rank-0
 * target is accepted too.
 */
public final class Loss {
  private Loss() {}

  /** How per-element losses are combined. */
  public enum Reduction { NONE, SUM, MEAN }

  /**
   * Cross-entropy options. {@code labelSmoothing} ε in [0, 1]; {@code ignoreIndex}: targets with this value
   * contribute zero loss and are left out of the mean's denominator (PyTorch's default is −100);
   * {@code chunkBytes}: for logits [N, C] without label smoothing, the most bytes of log-probabilities (and of
   * their gradient) held at once, as row chunks (at least one row; see {@link ChunkedCrossEntropy}): a memory
   * bound, no effect on any value.
   */
  public record CrossEntropyOptions(Reduction reduction, double labelSmoothing, long ignoreIndex, long chunkBytes) {
    public static final CrossEntropyOptions DEFAULT = new CrossEntropyOptions(Reduction.MEAN, 0, -100);

    public CrossEntropyOptions {
      if (reduction == null) throw new TensorException("crossEntropy: reduction must be NONE, SUM or MEAN, got null");
      if (!(labelSmoothing >= 0 && labelSmoothing <= 1))
        throw new TensorException("crossEntropy: label smoothing must be in [0, 1], got " + labelSmoothing);
      if (chunkBytes < 1) throw new TensorException("crossEntropy: chunk bytes must be >= 1, got " + chunkBytes);
    }

    /** Options with the default chunk bound (64 MiB). */
    public CrossEntropyOptions(Reduction reduction, double labelSmoothing, long ignoreIndex) {
      this(reduction, labelSmoothing, ignoreIndex, ChunkedCrossEntropy.CHUNK_BYTES);
    }

    public CrossEntropyOptions withReduction(Reduction r) { return new CrossEntropyOptions(r, labelSmoothing, ignoreIndex, chunkBytes); }

    public CrossEntropyOptions withLabelSmoothing(double e) { return new CrossEntropyOptions(reduction, e, ignoreIndex, chunkBytes); }

    public CrossEntropyOptions withIgnoreIndex(long i) { return new CrossEntropyOptions(reduction, labelSmoothing, i, chunkBytes); }

    public CrossEntropyOptions withChunkBytes(long b) { return new CrossEntropyOptions(reduction, labelSmoothing, ignoreIndex, b); }
  }

  public static Tensor crossEntropy(Tensor logits, Tensor targets) { return crossEntropy(logits, targets, CrossEntropyOptions.DEFAULT); }

  /**
   * Cross entropy with class-index targets (i64 or i32), exactly as PyTorch defines it without class weights:
   * per element i with target t_i ≠ ignoreIndex, loss_i = (1 − ε)·(−log p_i[t_i]) + ε·mean_c(−log p_i[c]);
   * ignored elements have loss 0. NONE returns the per-element losses ([N] or [N, d1..]); SUM their sum;
   * MEAN their sum divided by the number of non-ignored elements (NaN when every target is ignored, as
   * PyTorch). A target outside [0, C) that is not ignoreIndex is an error naming it. Logits [N, C] without label
   * smoothing never hold their log-probabilities whole ({@link ChunkedCrossEntropy}: the same values, less memory
   * than PyTorch's log_softmax + nll_loss); other shapes compose log-softmax, gather and the masks.
   */
  public static Tensor crossEntropy(Tensor logits, Tensor targets, CrossEntropyOptions options) {
    if (logits.rank() == 1 && targets.rank() == 0) {
      Tensor l = crossEntropy(Views.unsqueeze(logits, 0), Views.unsqueeze(targets, 0), options);
      return options.reduction() == Reduction.NONE ? Views.squeeze(l, 0) : l;
    }
    checkIndexTargets(logits, targets);
    int classes = logits.size(1);
    Tensor valid = Arith.compareScalar(BinaryOp.NE, targets, options.ignoreIndex());
    // ignored targets may be any value (e.g. -100): point them at class 0, then zero their loss
    Tensor safe = Arith.where(valid, targets, Tensor.scalar(0, targets.dtype(), targets.backend()));
    Tensor validF = Arith.cast(valid, logits.dtype());
    boolean chunked = logits.rank() == 2 && options.labelSmoothing() == 0;
    Tensor logp = chunked ? null : Softmax.logSoftmax(logits, 1);
    Tensor perElement;
    try {
      perElement = chunked ? ChunkedCrossEntropy.perRow(logits, safe, validF, options.chunkBytes())
          : Arith.mul(Arith.neg(Views.squeeze(Indexing.gather(logp, 1, Views.unsqueeze(safe, 1)), 1)), validF);
    } catch (TensorException e) {
      throw new TensorException("crossEntropy: a target is neither a class in 0.." + (classes - 1) + " nor ignoreIndex "
          + options.ignoreIndex() + ": " + e.getMessage());
    }
    double eps = options.labelSmoothing();
    if (eps > 0) {
      Tensor smooth = Arith.mul(Arith.mulScalar(Reduce.sum(logp, false, 1), -1.0 / classes), validF);
      perElement = Arith.add(Arith.mulScalar(perElement, 1 - eps), Arith.mulScalar(smooth, eps));
    }
    return switch (options.reduction()) {
      case NONE -> perElement;
      case SUM -> Reduce.sum(perElement);
      case MEAN -> Arith.div(Reduce.sum(perElement), Reduce.sum(validF));
    };
  }

  /**
   * Cross entropy with probability targets q of the logits' shape (differentiable in both): per element
   * loss_i = −Σ_c q'_ic·log p_ic with q' = (1 − ε)·q + ε/C. MEAN divides by the number of elements
   * (N·d1·…·dk), as PyTorch does for probability targets.
   */
  public static Tensor crossEntropySoft(Tensor logits, Tensor targetProbs, Reduction reduction, double labelSmoothing) {
    new CrossEntropyOptions(reduction, labelSmoothing, -100); // validates
    if (!logits.shape().equals(targetProbs.shape()))
      throw new TensorException("crossEntropySoft: target " + targetProbs.shape() + " must have the logits' shape " + logits.shape());
    OpSupport.requireFloating("crossEntropySoft", targetProbs);
    int classDim = logits.rank() == 1 ? 0 : 1;
    int classes = logits.size(classDim);
    Tensor q = labelSmoothing > 0
        ? Arith.addScalar(Arith.mulScalar(targetProbs, 1 - labelSmoothing), labelSmoothing / classes) : targetProbs;
    Tensor logp = Softmax.logSoftmax(logits, classDim);
    Tensor perElement = Arith.neg(Reduce.sum(Arith.mul(q, logp), false, classDim));
    return switch (reduction) {
      case NONE -> perElement;
      case SUM -> Reduce.sum(perElement);
      case MEAN -> Reduce.mean(perElement);
    };
  }

  private static void checkIndexTargets(Tensor logits, Tensor targets) {
    OpSupport.requireFloating("crossEntropy", logits);
    if (targets.dtype() != DType.I64 && targets.dtype() != DType.I32)
      throw new TensorException("crossEntropy: class-index targets must be i64 (or i32), got " + targets.dtype()
          + "; for probability targets use crossEntropySoft");
    if (logits.rank() < 2) throw new TensorException("crossEntropy: logits must be [N, C] or [N, C, d1..], got " + logits.shape());
    int[] expected = new int[logits.rank() - 1];
    expected[0] = logits.size(0);
    for (int i = 2; i < logits.rank(); i++) expected[i - 1] = logits.size(i);
    if (!targets.shape().equals(Shape.of(expected)))
      throw new TensorException("crossEntropy: targets " + targets.shape() + " do not match logits " + logits.shape()
          + " (expected " + Shape.of(expected) + ": the logits' shape without the class dim 1)");
  }
}
