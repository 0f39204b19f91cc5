package io.colossal4j.data;

/**
 * Where a data loader stands: the epoch and the index of the next batch within it. Saved in checkpoints so a
 * resumed run continues with the batch it would have drawn next (the epoch's order is a pure function of the
 * sampler's seed and the epoch, so nothing else needs saving).
 */
public record LoaderPosition(int epoch, int batch) {
  public LoaderPosition {
    if (epoch < 0 || batch < 0)
      throw new IllegalArgumentException("loader position needs epoch >= 0 and batch >= 0, got epoch " + epoch + " batch " + batch);
  }

  public static LoaderPosition start() { return new LoaderPosition(0, 0); }

  /** The position after one more batch; rolls over to the next epoch after {@code batchesPerEpoch} batches. */
  public LoaderPosition next(int batchesPerEpoch) {
    return batch + 1 >= batchesPerEpoch ? new LoaderPosition(epoch + 1, 0) : new LoaderPosition(epoch, batch + 1);
  }
}
