package io.colossal4j.distributed.cpu;

import io.colossal4j.distributed.CollectiveException;
import io.colossal4j.distributed.Work;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/** A {@link Work} backed by a future completed by the group's executor. */
final class FutureWork implements Work {
  private final CompletableFuture<Void> future;
  private final String what;

  FutureWork(CompletableFuture<Void> future, String what) {
    this.future = future;
    this.what = what;
  }

  @Override public void await() {
    try {
      future.get();
    } catch (ExecutionException e) {
      throw rethrow(e.getCause());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new CollectiveException(what + ": interrupted while waiting", e);
    }
  }

  @Override public void await(Duration limit) {
    try {
      future.get(limit.toNanos(), TimeUnit.NANOSECONDS);
    } catch (ExecutionException e) {
      throw rethrow(e.getCause());
    } catch (TimeoutException e) {
      throw new CollectiveException(what + ": not finished after " + limit.toMillis() + " ms");
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new CollectiveException(what + ": interrupted while waiting", e);
    }
  }

  @Override public boolean isDone() { return future.isDone(); }

  /** A new exception (so the waiter's stack shows) with the original message and cause. */
  private static CollectiveException rethrow(Throwable cause) {
    return new CollectiveException(cause.getMessage(), cause);
  }
}
