package io.colossal4j.backend.cpu;

import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ForkJoinTask;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

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

  /**
   * Runs body over [0, n) split into at most {@code threads} chunks of at least {@code grain} items (chunk c is
   * [n·c/chunks, n·(c+1)/chunks)), the calling thread taking part as in {@link #forEachChunk}: a call costs no
   * hand-over to a pool thread and back (about 25 µs each way on a 2-core VM, as often as a few hundred times a
   * training step), only the wake-up of helpers, which a worker already done finds nothing left for.
   */
  public void forRange(long n, long grain, RangeBody body) {
    if (n <= 0) return;
    int chunks = (int) Math.min(threads, Math.max(1, n / Math.max(1, grain)));
    if (chunks <= 1 || pool == null || ForkJoinTask.inForkJoinPool()) {
      body.run(0, n);
      return;
    }
    forEachChunk(chunks, c -> body.run(n * c / chunks, n * (c + 1) / chunks));
  }

  /** Processes chunk c. */
  @FunctionalInterface
  public interface ChunkBody { void run(long chunk); }

  /**
   * Runs body on every chunk in [0, chunks), each exactly once, and returns when all are done. The calling
   * thread takes part: it and up to threads − 1 pool workers take chunks in turn from a shared counter, so a
   * worker that the OS is slow to wake (on a busy machine, a scheduling quantum or more) finds the work
   * already done instead of holding the call up, as a fixed split would. Chunks should be short (tens of
   * microseconds): the caller waits, spinning, only for chunks that a worker has started.
   */
  public void forEachChunk(long chunks, ChunkBody body) {
    if (chunks <= 0) return;
    if (chunks == 1 || pool == null || ForkJoinTask.inForkJoinPool()) {
      for (long c = 0; c < chunks; c++) body.run(c);
      return;
    }
    AtomicLong next = new AtomicLong(), done = new AtomicLong();
    AtomicReference<Throwable> failure = new AtomicReference<>();
    Runnable drain = () -> {
      for (long c = next.getAndIncrement(); c < chunks; c = next.getAndIncrement()) {
        try {
          body.run(c);
        } catch (Throwable t) {
          failure.compareAndSet(null, t);
        } finally {
          done.incrementAndGet();
        }
      }
    };
    for (long h = Math.min(threads - 1, chunks - 1); h > 0; h--) pool.execute(drain); // a late helper finds no chunk left
    drain.run();
    for (int spins = 0; done.get() < chunks; spins++) {
      if (spins < 1 << 12) Thread.onSpinWait(); else Thread.yield();
    }
    Throwable t = failure.get();
    if (t instanceof RuntimeException e) throw e;
    if (t instanceof Error e) throw e;
  }

  @Override public void close() {
    if (pool != null) pool.shutdown();
  }
}
