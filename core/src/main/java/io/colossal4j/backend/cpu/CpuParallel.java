package io.colossal4j.backend.cpu;

import java.lang.ref.Cleaner;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;
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
   * thread takes part. Each thread owns a contiguous share of the chunks (the caller the first, worker i the
   * (i + 2)-th), takes its own from the front, in order, and when it has none left takes the others' from their back:
   * a worker that the OS is slow to run (on a busy machine, a scheduling quantum or more) finds its work done instead
   * of holding the call up, and otherwise every thread gets the same share of the range call after call, as OpenMP's
   * static schedule does, so the data a thread wrote stays in its core's caches for the next op over it. (An in-place
   * add over 4M floats in two chunks, this pool against the one that handed chunks out first come first served and
   * read the clock on every idle spin, alternating in one JVM on the 2-core VM: 106–115 → 153–174 GB/s.) Chunks should
   * be short (tens of microseconds): the caller waits, spinning, only for chunks that a worker has started. Calls from
   * several threads at once are safe (each caller finishes its own chunks, and any chunk no worker takes; the workers
   * serve the latest call).
   */
  public void forEachChunk(long chunks, ChunkBody body) {
    if (chunks <= 0) return;
    if (chunks == 1 || workers.count() == 0 || WORKER.get()) {
      for (long c = 0; c < chunks; c++) body.run(c);
      return;
    }
    if (chunks > Integer.MAX_VALUE) throw new IllegalArgumentException("forEachChunk: " + chunks + " chunks, at most 2^31 - 1");
    Job job = new Job(chunks, threads, body);
    workers.publish(job);
    job.drain(0);
    for (int spins = 0; job.done.get() < chunks; spins++) {
      if (spins < 1 << 12) Thread.onSpinWait(); else Thread.yield();
    }
    workers.retire(job);
    Throwable t = job.failure.get();
    if (t instanceof RuntimeException e) throw e;
    if (t instanceof Error e) throw e;
  }

  private static final AtomicLong JOB_IDS = new AtomicLong();

  /**
   * One call's chunks: thread t's share [chunks·t/T, chunks·(t+1)/T) as a range [lo, hi) packed in one long (lo in
   * the high half), its owner taking lo, others taking hi − 1, each by compare-and-set. The shares sit 128 bytes
   * apart, so each thread's counter stays in its own core's cache while it works through its share.
   */
  private static final class Job {
    private static final int PAD = 16;   // longs between shares: 128 bytes
    final long id = JOB_IDS.getAndIncrement();
    final long chunks;
    final int owners;
    final ChunkBody body;
    final AtomicLongArray shares;
    final AtomicLong done = new AtomicLong();
    final AtomicReference<Throwable> failure = new AtomicReference<>();

    Job(long chunks, int owners, ChunkBody body) {
      this.chunks = chunks;
      this.owners = owners;
      this.body = body;
      this.shares = new AtomicLongArray(owners * PAD);
      for (int t = 0; t < owners; t++) shares.set(t * PAD, (chunks * t / owners) << 32 | (chunks * (t + 1) / owners));
    }

    /** Runs thread {@code me}'s share, then whatever is left of the others', and counts what it ran once, at the end. */
    void drain(int me) {
      long ran = 0;
      for (long c; (c = takeFront(me)) >= 0; ran++) run(c);
      for (int k = 1; k < owners; k++) {
        int other = (me + k) % owners;
        for (long c; (c = takeBack(other)) >= 0; ran++) run(c);
      }
      if (ran > 0) done.addAndGet(ran);
    }

    private void run(long c) {
      try {
        body.run(c);
      } catch (Throwable t) {
        failure.compareAndSet(null, t);
      }
    }

    private long takeFront(int t) {
      for (;;) {
        long v = shares.get(t * PAD), lo = v >>> 32, hi = v & 0xffffffffL;
        if (lo >= hi) return -1;
        if (shares.compareAndSet(t * PAD, v, (lo + 1) << 32 | hi)) return lo;
      }
    }

    private long takeBack(int t) {
      for (;;) {
        long v = shares.get(t * PAD), lo = v >>> 32, hi = v & 0xffffffffL;
        if (lo >= hi) return -1;
        if (shares.compareAndSet(t * PAD, v, lo << 32 | (hi - 1))) return hi - 1;
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
      int spins = 0;
      while (!closed) {
        Job j = current;
        if (j != null && j.id != seen) {
          seen = j.id;
          j.drain(me + 1);
          idleSince = System.nanoTime();
          spins = 0;
        } else if ((++spins & 63) != 0 || System.nanoTime() - idleSince < SPIN_NANOS) {
          Thread.onSpinWait();   // the clock read every 64 spins: reading it on every spin slowed the working thread's stream here
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
