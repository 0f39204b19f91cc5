package io.colossal4j.parallel.tensor;

import io.colossal4j.distributed.ProcessGroup;
import java.util.Map;

/**
 * A module that stands in for a single-device layer and holds this rank's slices of that layer's parameters,
 * under the same local names ({@code weight}, {@code bias}) so the model's dotted names do not change.
 * Parameters it does not list in {@link #shardedParameters()} are replicated: every rank holds all of them.
 */
public sealed interface TensorParallelModule permits ColumnParallelLinear, RowParallelLinear, VocabParallelEmbedding {
  /** Local parameter name to how the full parameter is sliced over {@link #group()}. */
  Map<String, Placement.Shard> shardedParameters();

  /** The tp group the module communicates over. */
  ProcessGroup group();
}
