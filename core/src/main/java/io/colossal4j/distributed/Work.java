package io.colossal4j.distributed;

import java.time.Duration;

/**
 * A handle on an asynchronous collective. The tensors passed to the collective belong to it until
 * {@link #await()} returns: the caller must neither read nor write them before (that is what lets
 * communication overlap computation on other tensors).
 */
public interface Work {
  /** Blocks until the operation finished; throws the {@link CollectiveException} that ended it. */
  void await();

  /** Like {@link #await()}, but gives up after {@code limit} with a {@link CollectiveException} (the operation keeps running). */
  void await(Duration limit);

  boolean isDone();

  /** A handle on work that already finished (single-rank groups, empty tensors). */
  static Work completed() {
    return new Work() {
      @Override public void await() {}

      @Override public void await(Duration limit) {}

      @Override public boolean isDone() { return true; }
    };
  }
}
