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
   * The step's {loss·samples, correct, samples}, an f64 vector on the parameters' device, summed over the ranks
   * that split the global batch (data parallelism all-reduces it), so every rank reports the global batch's
   * numbers. Returns the reduced vector (it may be {@code sums} itself); the engine reads it when the step's
   * figures are asked for, so a reduction queued on the device need not be waited for here.
   */
  default Tensor reduceStepMetrics(Tensor sums) { return sums; }

  /**
   * Global squared gradient norm as a one-element f64 tensor on the parameters' device (parallel strategies
   * reduce it over ranks and count replicas once); read by the engine only when clipping needs it now.
   */
  default Tensor gradSquaredNorm(List<Tensor> params) { return GradClip.sumOfSquaresOnDevice(params); }
}
