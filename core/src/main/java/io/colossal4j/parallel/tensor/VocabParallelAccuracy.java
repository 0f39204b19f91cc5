package io.colossal4j.parallel.tensor;


import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.distributed.Reduction;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.Arrays;

/**
 * Top-1 accuracy over logits whose vocabulary is divided over the tp group, without gathering them: the
 * vocab-parallel counterpart of {@code step.Accuracy.correctTopK(logits, targets, 1)}, with the same rule
 * (a row is correct when no logit is larger than the target's and none of lower index equals it, as
 * torch.topk resolves ties) and the same treatment of targets outside the vocabulary (never correct).
 * Computed on the host, like Accuracy: per row, each rank reports the largest logit it holds before and
 * after the target's index and the target's logit if it owns it; one all-reduce of each combines them.
 */
public final class VocabParallelAccuracy {
  private VocabParallelAccuracy() {}

  /** logits [..., V/p] (this rank's slice), targets [...] global ids; every rank returns the same count. */
  public static long correctTop1(Tensor logits, Tensor targets, ProcessGroup tp) {
    int n = logits.size(-1), start = tp.rank() * n;
    double[] l = logits.toDoubleArray();
    long[] t = targets.toLongArray();
    int rows = t.length;
    double[] before = new double[rows], after = new double[rows], target = new double[rows];
    Arrays.fill(before, Double.NEGATIVE_INFINITY);
    Arrays.fill(after, Double.NEGATIVE_INFINITY);
    for (int r = 0; r < rows; r++) {
      long own = t[r] - start;
      for (int j = 0; j < n; j++) {
        double v = l[r * n + j];
        if (j < own) before[r] = Math.max(before[r], v);
        else if (j > own) after[r] = Math.max(after[r], v);
        else target[r] = v;
      }
    }
    before = reduced(before, tp, Reduction.MAX, logits);
    after = reduced(after, tp, Reduction.MAX, logits);
    target = reduced(target, tp, Reduction.SUM, logits);   // zero on every rank but the owner
    long vocab = (long) n * tp.size(), correct = 0;
    for (int r = 0; r < rows; r++)
      if (t[r] >= 0 && t[r] < vocab && target[r] > before[r] && target[r] >= after[r]) correct++;
    return correct;
  }

  private static double[] reduced(double[] values, ProcessGroup tp, Reduction op, Tensor like) {
    if (tp.size() == 1 || values.length == 0) return values;
    Tensor t = Tensor.of(values, Shape.of(values.length), DType.F64, like.backend());
    tp.allReduce(t, op);
    return t.toDoubleArray();
  }
}
