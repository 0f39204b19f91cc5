package io.colossal4j.backend.cpu;

import java.lang.ref.Cleaner;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;

/**
 * The CPU backend's own worker pool. Kernels split an index range into at most {@code threads} chunks of
 * at least {@code grain} items; small ranges run on the calling thread with no task overhead.
 *
 * <p>Workers, {@code threads − 1} daemon threads, wait for the next call spinning for a short while
 * ({@link #SPIN_NANOS}) before they park, as OpenMP's workers do: kernels come in quick succession (a training
 * step makes hundreds of calls; an elementwise op over 4M floats takes a few hundred microseconds), and a worker
 * that must be woken by the OS joins a call tens of microseconds late on a small VM, by when the caller has
 * taken most of the chunks itself. A parked worker is unparked by the next call. The workers end when the pool
 * is closed or becomes unreachable.
 */
public final class CpuParallel implements AutoCloseable {
  /** How long an idle worker spins for the next call before it parks. */
  static final long SPIN_NANOS = 200_000;

  /** Processes items [start, end). */
  @FunctionalInterface
  public interface RangeBody { void run(long start, long end); }

  /** Processes chunk c. */
  @FunctionalInterface
  public interface ChunkBody { void run(long chunk); }

  /** True on this pool's workers (and any pool's): a kernel they run does not split again. */
  private static final ThreadLocal<Boolean> WORKER = ThreadLocal.withInitial(() -> false);

  /** One cleaner thread for every pool of the process: it ends the workers of a pool dropped without close(). */
  private static final Cleaner CLEANER = Cleaner.create();

  private final int threads;
  private final Workers workers;
  private final Cleaner.Cleanable cleanable;

  public CpuParallel(int threads) {
    if (threads < 1) throw new IllegalArgumentException("cpu threads must be >= 1, got " + threads);
    this.threads = threads;
    this.workers = new Workers(threads - 1);
    this.cleanable = CLEANER.register(this, workers::close);   // the action holds the workers, never the pool
  }

  public int threads() { return threads; }

  /** The worker threads (tests check that they end). */
  Thread[] workerThreads() { return workers.threads.clone(); }

  /**
   * Runs body over [0, n) split into at most {@code threads} chunks of at least {@code grain} items (chunk c is
   * [n·c/chunks, n·(c+1)/chunks)), the calling thread taking part as in {@link #forEachChunk}.
   */
  public void forRange(long n, long grain, RangeBody body) {
    if (n <= 0) return;
    int chunks = (int) Math.min(threads, Math.max(1, n / Math.max(1, grain)));
    if (chunks <= 1 || workers.count() == 0 || WORKER.get()) {
      body.run(0, n);
      return;
    }
    forEachChunk(chunks, c -> body.run(n * c / chunks, n * (c + 1) / chunks));
  }

  /**
   * Runs body on every chunk in [0, chunks), each exactly once, and returns when all are done. The calling
   * thread takes part: it and the workers take chunks in turn from a shared counter, so a worker that the OS
   * is slow to run (on a busy machine, a scheduling quantum or more) finds the work already done instead of
   * holding the call up, as a fixed split would. Chunks should be short (tens of microseconds): the caller
   * waits, spinning, only for chunks that a worker has started. Calls from several threads at once are safe
   * (each caller finishes its own chunks; the workers serve the latest call).
   */
  public void forEachChunk(long chunks, ChunkBody body) {
    if (chunks <= 0) return;
    if (chunks == 1 || workers.count() == 0 || WORKER.get()) {
      for (long c = 0; c < chunks; c++) body.run(c);
      return;
    }
    Job job = new Job(chunks, body);
    workers.publish(job);
    job.drain();
    for (int spins = 0; job.done.get() < chunks; spins++) {
      if (spins < 1 << 12) Thread.onSpinWait(); else Thread.yield();
    }
    workers.retire(job);
    Throwable t = job.failure.get();
    if (t instanceof RuntimeException e) throw e;
    if (t instanceof Error e) throw e;
  }

  private static final AtomicLong JOB_IDS = new AtomicLong();

  /** One call's chunks, taken from a shared counter by the caller and the workers. */
  private static final class Job {
    final long id = JOB_IDS.getAndIncrement();
    final long chunks;
    final ChunkBody body;
    final AtomicLong next = new AtomicLong(), done = new AtomicLong();
    final AtomicReference<Throwable> failure = new AtomicReference<>();

    Job(long chunks, ChunkBody body) {
      this.chunks = chunks;
      this.body = body;
    }

    void drain() {
      for (long c = next.getAndIncrement(); c < chunks; c = next.getAndIncrement()) {
        try {
          body.run(c);
        } catch (Throwable t) {
          failure.compareAndSet(null, t);
        } finally {
          done.incrementAndGet();
        }
      }
    }
  }

  /**
   * The worker threads and the call they serve. Each worker drains every new call; between calls it spins up to
   * {@link #SPIN_NANOS}, then parks until a call unparks it. Holds no reference to the pool, so a pool dropped
   * without {@link #close} becomes unreachable and its cleaner ends the workers.
   */
  private static final class Workers implements Runnable {
    private final Thread[] threads;
    private final boolean[] parked;
    /** The latest call; null once it is done. */
    private volatile Job current;
    private volatile boolean closed;

    Workers(int count) {
      threads = new Thread[count];
      parked = new boolean[count];
      for (int i = 0; i < count; i++) threads[i] = Thread.ofPlatform().daemon().name("c4j-cpu-" + i).unstarted(this);
      for (Thread t : threads) t.start();
    }

    int count() { return threads.length; }

    void publish(Job job) {
      current = job;   // volatile write, then volatile reads of the flags: not reordered (a worker re-reads current after raising its flag)
      for (int i = 0; i < threads.length; i++) if (isParked(i)) LockSupport.unpark(threads[i]);
    }

    /** The call is done: workers stop looking at it (and let go of its body). */
    void retire(Job job) {
      if (current == job) current = null;
    }

    @Override public void run() {
      int me = indexOf(Thread.currentThread());
      WORKER.set(true);
      long seen = -1, idleSince = System.nanoTime();
      while (!closed) {
        Job j = current;
        if (j != null && j.id != seen) {
          seen = j.id;
          j.drain();
          idleSince = System.nanoTime();
        } else if (System.nanoTime() - idleSince < SPIN_NANOS) {
          Thread.onSpinWait();
        } else {
          setParked(me, true);
          // a call published before the flag was set is seen here; one published after sees the flag and unparks
          Job again = current;
          if (!closed && (again == null || again.id == seen)) LockSupport.park(this);
          setParked(me, false);
          idleSince = System.nanoTime();
        }
      }
    }

    private int indexOf(Thread t) {
      for (int i = 0; i < threads.length; i++) if (threads[i] == t) return i;
      throw new IllegalStateException(t + " is not a worker of this pool");
    }

    private boolean isParked(int i) { return (boolean) PARKED.getVolatile(parked, i); }

    private void setParked(int i, boolean v) { PARKED.setVolatile(parked, i, v); }

    void close() {
      closed = true;
      for (Thread t : threads) LockSupport.unpark(t);
    }
  }

  private static final java.lang.invoke.VarHandle PARKED = java.lang.invoke.MethodHandles.arrayElementVarHandle(boolean[].class);

  @Override public void close() { cleanable.clean(); }
}
