package io.colossal4j.step;

import io.colossal4j.autograd.GradMode;
import io.colossal4j.backend.BinaryOp;
import io.colossal4j.ops.Arith;
import io.colossal4j.ops.Reduce;
import io.colossal4j.ops.Views;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Tensor;

/** Top-k accuracy counts from logits [N, C] (or [N, ..., C] flattened over leading dims) and class targets. */
public final class Accuracy {
  private Accuracy() {}

  /** Number of rows whose target is among the k largest logits (ties resolved by index, as torch.topk). */
  public static long correctTopK(Tensor logits, Tensor targets, int k) {
    if (k == 1) return correctTop1(logits, targets);
    int c = logits.size(-1);
    double[] l = logits.toDoubleArray();
    long[] t = targets.toLongArray();
    int rows = l.length / c;
    if (rows != t.length) throw new IllegalArgumentException("accuracy: " + rows + " rows of logits but " + t.length + " targets");
    long correct = 0;
    for (int r = 0; r < rows; r++) {
      int target = (int) t[r];
      if (target < 0 || target >= c) continue; // ignored targets count as not correct and are excluded by the caller
      double v = l[r * c + target];
      int better = 0;
      for (int j = 0; j < c && better < k; j++) {
        double o = l[r * c + j];
        if (o > v || (o == v && j < target)) better++;
      }
      if (better < k) correct++;
    }
    return correct;
  }

  /**
   * Top-1 on the logits' device: argmax per row (the first index on ties, as above; a NaN logit is the
   * prediction), compared with the targets and summed there, so only one number crosses to the host (a GPT's
   * [tokens, vocab] logits are gigabytes). Targets outside 0..C-1 never match an index: not correct.
   */
  private static long correctTop1(Tensor logits, Tensor targets) {
    return Math.round(correctTop1OnDevice(logits, targets).item());
  }

  /**
   * The top-1 count as an f64 scalar on the logits' device, not yet read: a caller can launch more work (the
   * backward) before it waits for the number.
   */
  public static Tensor correctTop1OnDevice(Tensor logits, Tensor targets) {
    int c = logits.size(-1);
    long rows = logits.numel() / Math.max(c, 1);
    if (rows != targets.numel())
      throw new IllegalArgumentException("accuracy: " + rows + " rows of logits but " + targets.numel() + " targets");
    return GradMode.noGrad(() -> {
      if (rows == 0) return Tensor.zeros(io.colossal4j.tensor.Shape.of(), DType.F64, logits.backend());
      Tensor flat = Views.reshape(logits, (int) rows, c);
      Tensor pred = Reduce.argmax(flat, 1, false);
      Tensor t = Arith.cast(Views.reshape(targets, (int) rows), DType.I64);
      return Reduce.sum(Arith.cast(Arith.compare(BinaryOp.EQ, pred, t), DType.F64));
    });
  }
}
