package io.colossal4j.train;

import io.colossal4j.train.metrics.EvalMetrics;
import io.colossal4j.train.metrics.StepMetrics;

/** What a training run reports, in order: start, per epoch (steps, evaluations), end. Implementations must be cheap. */
public interface TrainListener {
  /** Static facts about the run, printed once. */
  record RunInfo(String title, java.util.List<String> lines, int epochs) {}

  /** The end-of-run numbers. */
  record Summary(long steps, int epochs, double seconds, double samplesPerS, double finalLoss, double evalAccuracy, double evalLoss,
                 double bestEvalAccuracy, java.nio.file.Path runDir) {}

  default void onStart(RunInfo info) {}

  default void onEpochStart(int epoch, int stepsInEpoch, int stepsDone) {}

  default void onStep(StepMetrics m, int stepInEpoch) {}

  default void onEval(EvalMetrics m) {}

  default void onEpochEnd(int epoch) {}

  default void onCheckpoint(java.nio.file.Path path) {}

  default void onEnd(Summary s) {}
}
