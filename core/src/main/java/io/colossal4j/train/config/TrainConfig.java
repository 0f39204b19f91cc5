package io.colossal4j.train.config;

/**
 * The training loop. {@code global_batch_size} is the batch of one optimizer step summed over all data-parallel
 * ranks and accumulation steps (not per process). {@code epochs} is the number of passes over the data set in
 * total; {@code max_steps} > 0 stops earlier. {@code clip_grad_norm} 0 = no clipping. {@code eval_every}: steps
 * between evaluations, 0 = at the end of each epoch.
 */
public record TrainConfig(int globalBatchSize, int epochs, long maxSteps, int gradientAccumulation, double clipGradNorm,
                          Precision precision, int evalEvery, double labelSmoothing) {
  public enum Precision { FP32, BF16, FP16 }

  public TrainConfig {
    ConfigException.atLeast("global_batch_size", globalBatchSize, 1);
    ConfigException.atLeast("epochs", epochs, 1);
    ConfigException.atLeast("max_steps", maxSteps, 0);
    ConfigException.atLeast("gradient_accumulation", gradientAccumulation, 1);
    ConfigException.atLeast("clip_grad_norm", clipGradNorm, 0.0);
    ConfigException.atLeast("eval_every", evalEvery, 0);
    if (!(labelSmoothing >= 0 && labelSmoothing < 1)) throw ConfigException.invalid("label_smoothing", labelSmoothing, "a number in [0, 1)");
    if (globalBatchSize % gradientAccumulation != 0)
      throw new ConfigException("gradient_accumulation", "global_batch_size " + globalBatchSize
          + " is not divisible by gradient_accumulation " + gradientAccumulation);
  }

  public static TrainConfig defaults() { return new TrainConfig(128, 10, 0, 1, 0, Precision.FP32, 0, 0); }
}
