package io.colossal4j.step;

import io.colossal4j.tensor.Tensor;

/** Top-k accuracy counts from logits [N, C] (or [N, ..., C] flattened over leading dims) and class targets. */
public final class Accuracy {
  private Accuracy() {}

  /** Number of rows whose target is among the k largest logits (ties resolved by index, as torch.topk). */
  public static long correctTopK(Tensor logits, Tensor targets, int k) {
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
}
