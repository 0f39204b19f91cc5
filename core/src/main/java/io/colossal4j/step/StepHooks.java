package io.colossal4j.step;

import io.colossal4j.optim.GradClip;
import io.colossal4j.tensor.Tensor;
import java.util.List;

/** Called around the optimizer step (data parallelism synchronises gradients here, pipeline schedules drive it). */
public interface StepHooks {
  /** Before backward of micro-batch {@code micro} (0-based) of {@code count}: only the last one's gradients need synchronising. */
  default void beforeBackward(int micro, int count) {}

  /** After all micro-batches, before clipping and the optimizer step. */
  default void beforeStep() {}

  /** After the optimizer step and zero-grad (data parallelism re-attaches its bucket views here). */
  default void afterStep() {}

  /**
   * The step's {loss·samples, correct, samples} summed over the ranks that split the global batch (data
   * parallelism all-reduces them), so every rank reports the global batch's numbers.
   */
  default double[] reduceStepMetrics(double[] sums) { return sums; }

  /** Global squared gradient norm (parallel strategies reduce it over ranks and count replicas once). */
  default double gradSquaredNorm(List<Tensor> params) { return GradClip.sumOfSquares(params); }
}
