package io.colossal4j.train.config;

/**
 * How the run is spread over GPUs, in the handbook's shape: {@code parallel: {pipeline: 2, tensor: {mode: 1d,
 * size: 2}}}. GPUs = data × tensor × pipeline; {@code data: 0} means "inferred from the world size". Pipeline
 * runs split each rank's batch into {@code num_micro_batches} (0 = 2 × pipeline stages) under {@code schedule};
 * {@code zero} shards optimizer states (1), also gradients (2), also parameters (3) over data-parallel ranks.
 */
public record ParallelConfig(int data, int pipeline, TensorParallel tensor, int numMicroBatches, PipelineSchedule schedule,
                             ZeroStage zero) {
  public ParallelConfig {
    ConfigException.atLeast("data", data, 0);
    ConfigException.atLeast("pipeline", pipeline, 1);
    ConfigException.atLeast("num_micro_batches", numMicroBatches, 0);
    int micro = numMicroBatches == 0 ? 2 * pipeline : numMicroBatches;
    if (schedule instanceof PipelineSchedule.Interleaved && micro % pipeline != 0)
      throw new ConfigException("num_micro_batches", "the interleaved schedule needs num_micro_batches to be a multiple of the "
          + pipeline + " pipeline stages, got " + micro);
    if (pipeline == 1 && schedule instanceof PipelineSchedule.Interleaved i && i.chunks() > 1)
      throw new ConfigException("schedule", "interleaved chunks " + i.chunks() + " need pipeline >= 2, got pipeline 1");
  }

  public static ParallelConfig defaults() {
    return new ParallelConfig(0, 1, TensorParallel.defaults(), 0, new PipelineSchedule.OneFOneB(), ZeroStage.NONE);
  }

  /** Micro-batches per step and rank (the default is 2 per pipeline stage, as the handbook recommends). */
  public int microBatches() { return numMicroBatches == 0 ? (pipeline == 1 ? 1 : 2 * pipeline) : numMicroBatches; }

  /** The data-parallel size on {@code worldSize} GPUs, or an error naming the sizes that do not fit. */
  public int dataSize(int worldSize) {
    int modelParallel = tensor.size() * pipeline;
    if (worldSize % modelParallel != 0)
      throw new ConfigException("parallel", "world size " + worldSize + " is not divisible by tensor × pipeline = "
          + tensor.size() + " × " + pipeline);
    int dp = worldSize / modelParallel;
    if (data != 0 && data != dp)
      throw new ConfigException("parallel.data", "data " + data + " × tensor " + tensor.size() + " × pipeline " + pipeline + " = "
          + data * modelParallel + " but the world size is " + worldSize + " (use data: 0 to infer it)");
    return dp;
  }

  /** Tensor parallelism: {@code 1d} (Megatron column/row), {@code 2d} (SUMMA, size q²), {@code 2.5d} (size depth·q²), {@code 3d} (size q³). */
  public record TensorParallel(Mode mode, int size, int depth) {
    public enum Mode implements ConfigEnum {
      ONE_D("1d"), TWO_D("2d"), TWO_AND_A_HALF_D("2.5d"), THREE_D("3d");

      private final String configName;

      Mode(String configName) { this.configName = configName; }

      @Override public String configName() { return configName; }
    }

    public TensorParallel {
      ConfigException.atLeast("size", size, 1);
      ConfigException.atLeast("depth", depth, 1);
      switch (mode) {
        case ONE_D -> { }
        case TWO_D -> { if (!isPower(size, 2)) throw ConfigException.invalid("size", size, "a square (1, 4, 9, 16, ...) for 2d tensor parallelism"); }
        case TWO_AND_A_HALF_D -> {
          if (size % depth != 0 || !isPower(size / depth, 2))
            throw ConfigException.invalid("size", size, "depth × a square for 2.5d tensor parallelism (depth is " + depth + ")");
        }
        case THREE_D -> { if (!isPower(size, 3)) throw ConfigException.invalid("size", size, "a cube (1, 8, 27, ...) for 3d tensor parallelism"); }
      }
    }

    public static TensorParallel defaults() { return new TensorParallel(Mode.ONE_D, 1, 1); }

    private static boolean isPower(int n, int p) {
      int r = (int) Math.round(Math.pow(n, 1.0 / p));
      return (int) Math.round(Math.pow(r, p)) == n;
    }
  }

  /** The pipeline schedule. */
  public sealed interface PipelineSchedule {
    @ConfigName("gpipe")
    record GPipe() implements PipelineSchedule {
      public static GPipe defaults() { return new GPipe(); }
    }

    @ConfigName("1f1b")
    record OneFOneB() implements PipelineSchedule {
      public static OneFOneB defaults() { return new OneFOneB(); }
    }

    /** Interleaved 1F1B with {@code chunks} model chunks per stage. */
    @ConfigName("interleaved")
    record Interleaved(int chunks) implements PipelineSchedule {
      public Interleaved {
        ConfigException.atLeast("chunks", chunks, 1);
      }

      public static Interleaved defaults() { return new Interleaved(2); }
    }
  }

  /** ZeRO, named by what it shards over data-parallel ranks; written 0..3 in YAML. */
  public enum ZeroStage implements ConfigEnum {
    NONE, SHARD_OPTIMIZER_STATE, SHARD_GRADIENTS, SHARD_PARAMETERS;

    @Override public String configName() { return Integer.toString(ordinal()); }
  }
}
