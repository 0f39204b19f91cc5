package io.colossal4j.step;

import io.colossal4j.ops.Views;
import io.colossal4j.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;

/** Inputs and targets of one (global or micro) batch; dim 0 is the sample dim of both. */
public record Batch(Tensor inputs, Tensor targets) {
  public Batch {
    if (inputs.size(0) != targets.size(0))
      throw new IllegalArgumentException("batch has " + inputs.size(0) + " inputs but " + targets.size(0) + " targets");
  }

  public int size() { return inputs.size(0); }

  /** Splits into {@code n} micro-batches of near-equal size (views, no copy). */
  public List<Batch> split(int n) {
    if (n < 1 || n > size()) throw new IllegalArgumentException("cannot split a batch of " + size() + " into " + n + " micro-batches");
    List<Batch> out = new ArrayList<>(n);
    int start = 0;
    for (int i = 0; i < n; i++) {
      int len = (size() - start) / (n - i);
      out.add(new Batch(Views.narrow(inputs, 0, start, len), Views.narrow(targets, 0, start, len)));
      start += len;
    }
    return out;
  }
}
