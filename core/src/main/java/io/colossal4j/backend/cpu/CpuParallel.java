package io.colossal4j.backend.cpu;

import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ForkJoinTask;
import java.util.concurrent.RecursiveAction;

/**
 * The CPU backend's own worker pool. Kernels split an index range into at most {@code threads} chunks of
 * at least {@code grain} items; small ranges run on the calling thread with no task overhead.
 */
public final class CpuParallel implements AutoCloseable {
  /** Processes items [start, end). */
  @FunctionalInterface
  public interface RangeBody { void run(long start, long end); }

  private final int threads;
  private final ForkJoinPool pool;

  public CpuParallel(int threads) {
    if (threads < 1) throw new IllegalArgumentException("cpu threads must be >= 1, got " + threads);
    this.threads = threads;
    this.pool = threads == 1 ? null : new ForkJoinPool(threads, p -> {
      var t = ForkJoinPool.defaultForkJoinWorkerThreadFactory.newThread(p);
      t.setName("c4j-cpu-" + t.getPoolIndex());
      t.setDaemon(true);
      return t;
    }, null, false);
  }

  public int threads() { return threads; }

  public void forRange(long n, long grain, RangeBody body) {
    if (n <= 0) return;
    int chunks = (int) Math.min(threads, Math.max(1, n / Math.max(1, grain)));
    if (chunks <= 1 || pool == null || ForkJoinTask.inForkJoinPool()) {
      body.run(0, n);
      return;
    }
    pool.invoke(new RecursiveAction() {
      @Override protected void compute() {
        ForkJoinTask<?>[] tasks = new ForkJoinTask<?>[chunks - 1];
        for (int c = 1; c < chunks; c++) {
          long s = n * c / chunks, e = n * (c + 1) / chunks;
          tasks[c - 1] = ForkJoinTask.adapt(() -> body.run(s, e)).fork();
        }
        body.run(0, n / chunks);
        for (ForkJoinTask<?> t : tasks) t.join();
      }
    });
  }

  @Override public void close() {
    if (pool != null) pool.shutdown();
  }
}
