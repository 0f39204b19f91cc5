package io.colossal4j.step;

import io.colossal4j.tensor.Tensor;

/** Maps a model's output and the targets to a scalar loss (mean over the batch). */
@FunctionalInterface
public interface LossFunction {
  Tensor apply(Tensor output, Tensor targets);
}
