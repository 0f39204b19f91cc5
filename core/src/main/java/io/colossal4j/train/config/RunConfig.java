package io.colossal4j.train.config;

import java.nio.file.Path;

/**
 * A whole run, as read from YAML (keys are the snake_case forms of these component names):
 * <pre>
 * name: vit-fashion-mnist      # run directory: &lt;logging.dir&gt;/&lt;name&gt;
 * seed: 0                      # the root of every random stream
 * device:     {@link DeviceConfig}
 * model:      {@link ModelConfig}
 * data:       {@link DataConfig}
 * train:      {@link TrainConfig}
 * optimizer:  {@link OptimizerConfig}   (sgd | adam | adamw | lamb | lars)
 * schedule:   {@link ScheduleConfig}    (constant | linear | cosine | step | one_cycle)
 * parallel:   {@link ParallelConfig}
 * checkpoint: {@link CheckpointConfig}
 * logging:    {@link LoggingConfig}
 * </pre>
 * Built only through {@link Configs}, which checks every key and value before any work starts.
 */
public record RunConfig(String name, long seed, DeviceConfig device, ModelConfig model, DataConfig data, TrainConfig train,
                        OptimizerConfig optimizer, ScheduleConfig schedule, ParallelConfig parallel,
                        CheckpointConfig checkpoint, LoggingConfig logging) {
  public RunConfig {
    if (!name.matches("[A-Za-z0-9][A-Za-z0-9._-]*"))
      throw ConfigException.invalid("name", name, "letters, digits, '.', '_' and '-' (it names the run directory)");
    if (parallel.data() > 0) plan(parallel.data() * parallel.tensor().size() * parallel.pipeline(), train, parallel);
    // the f16 loss scaler decides overflow per rank: ranks holding different gradients (tp, pp) would disagree
    if (train.precision() == TrainConfig.Precision.FP16 && (parallel.tensor().size() > 1 || parallel.pipeline() > 1))
      throw new ConfigException("train.precision", "fp16 with tensor or pipeline parallelism (tensor " + parallel.tensor().size()
          + ", pipeline " + parallel.pipeline() + ") is not supported: the loss scaler's overflow check is per rank and would "
          + "disagree between ranks that hold different gradients; use bf16 (no scaling needed), or fp16 with data parallelism only");
  }

  public static RunConfig defaults() {
    return new RunConfig("run", 0, DeviceConfig.defaults(), ModelConfig.defaults(), DataConfig.defaults(), TrainConfig.defaults(),
        OptimizerConfig.defaults(), ScheduleConfig.defaults(), ParallelConfig.defaults(), CheckpointConfig.defaults(),
        LoggingConfig.defaults());
  }

  /** {@code <logging.dir>/<name>}: where metrics, event files, the plot and (by default) checkpoints go. */
  public Path runDir() { return logging.dir().resolve(name); }

  public Path checkpointDir() { return checkpoint.dir().orElse(runDir().resolve("checkpoints")); }

  /**
   * How the global batch is divided on {@code worldSize} processes: per data-parallel rank, per accumulation step
   * and per pipeline micro-batch, each of which must divide evenly.
   */
  public record BatchPlan(int dataParallel, int perRankBatch, int accumulation, int microBatches, int microBatchSize) {
    @Override public String toString() {
      return "global batch %d = %d data-parallel ranks × %d accumulation steps × %d micro-batches × %d samples".formatted(
          dataParallel * perRankBatch, dataParallel, accumulation, microBatches, microBatchSize);
    }
  }

  public BatchPlan plan(int worldSize) { return plan(worldSize, train, parallel); }

  private static BatchPlan plan(int worldSize, TrainConfig train, ParallelConfig parallel) {
    int dp = parallel.dataSize(worldSize);
    int global = train.globalBatchSize(), accum = train.gradientAccumulation(), micro = parallel.microBatches();
    if (global % (dp * accum * micro) != 0)
      throw new ConfigException("train.global_batch_size", "global batch " + global + " does not divide into " + dp
          + " data-parallel ranks × " + accum + " accumulation steps × " + micro + " micro-batches (= " + dp * accum * micro
          + "); choose a multiple of " + dp * accum * micro);
    return new BatchPlan(dp, global / dp, accum, micro, global / (dp * accum * micro));
  }
}
