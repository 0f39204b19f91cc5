package io.colossal4j.distributed.nccl;

import io.colossal4j.backend.cuda.CudaBackend;
import io.colossal4j.backend.cuda.ffi.CudaException;
import io.colossal4j.backend.cuda.ffi.Driver;
import io.colossal4j.backend.cuda.ffi.Nccl;
import io.colossal4j.distributed.CollectiveException;
import io.colossal4j.distributed.Store;
import io.colossal4j.distributed.StoreException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.locks.LockSupport;

/**
 * What the NCCL groups of one rank share: the GPU backend, the NCCL binding, the store (unique ids, failure
 * notices), every communicator (so each is created once and aborted together), the operations in flight and the
 * watchdog thread that watches them.
 *
 * <p>Fail-stop: the first failure on any rank (an operation past the timeout, an NCCL asynchronous error, a
 * failed call) is recorded, published through the store and every communicator of the rank is aborted (which
 * ends NCCL kernels still waiting for a peer); the other ranks' watchdogs read the notice within a second and do
 * the same, so every rank ends with a message naming the rank, operation and group that failed first.
 * Thread-safety: groups may be used from one thread per rank; the watchdog runs on its own thread.
 */
final class NcclWorld {
  /** How long collectives may take, how long to wait for peers at creation, and whether a failure ends the process. */
  /** {@code priorityStreams}: communicator streams at the context's highest priority (see NcclDistributed.Options). */
  record Options(Duration timeout, Duration connectTimeout, boolean haltOnFailure, boolean priorityStreams) {
    Options {
      if (timeout.isNegative() || timeout.isZero()) throw new IllegalArgumentException("collective timeout must be positive, got " + timeout);
      if (connectTimeout.isNegative() || connectTimeout.isZero()) throw new IllegalArgumentException("connect timeout must be positive, got " + connectTimeout);
    }
  }

  private static final String FAILED = "nccl/failed", FAILURE = "nccl/failure";

  private final CudaBackend backend;
  private final Nccl nccl;
  private final Store store, watchStore;
  final int rank, size;
  final Options options;
  private final PrintStream log;
  private final Map<List<Integer>, NcclProcessGroup> groups = new HashMap<>();
  private final List<Communicator> comms = new CopyOnWriteArrayList<>();
  private final ConcurrentLinkedQueue<NcclWork> pending = new ConcurrentLinkedQueue<>();
  private final Thread watchdog;
  private final AutoCloseable onClose;
  private volatile CollectiveException failed;
  private volatile boolean closed;

  /** {@code watchStore} is a second connection to the same store, so the watchdog never waits behind a blocking get. */
  NcclWorld(CudaBackend backend, Nccl nccl, Store store, Store watchStore, int rank, int size, Options options, PrintStream log, AutoCloseable onClose) {
    this.backend = backend;
    this.nccl = nccl;
    this.store = store;
    this.watchStore = watchStore;
    this.rank = rank;
    this.size = size;
    this.options = options;
    this.log = log;
    this.onClose = onClose;
    this.watchdog = Thread.ofPlatform().daemon().name("c4j-nccl-watchdog-rank" + rank).unstarted(this::watch);
    watchdog.start();
  }

  CudaBackend backend() { return backend; }

  Driver driver() { return backend.driver(); }

  Nccl nccl() { return nccl; }

  /** The group of these world ranks, created on first request. */
  synchronized NcclProcessGroup group(String label, List<Integer> worldRanks) {
    if (closed) throw new IllegalStateException("the NCCL process group was closed");
    return groups.computeIfAbsent(List.copyOf(worldRanks), members -> new NcclProcessGroup(this, members.size() == size ? label : label + members, members));
  }

  // ---------------------------------------------------------------- communicators

  /**
   * Creates this rank's communicator over {@code worldRanks} (in communicator rank order): member 0 makes the
   * unique id and publishes it under {@code key}; every member starts a non-blocking creation and polls it, so
   * a peer that never comes ends in an abort after the connect timeout, not a hang. Collective over the members.
   */
  Communicator create(String name, String key, List<Integer> worldRanks) {
    int me = worldRanks.indexOf(rank);
    if (me < 0) throw new IllegalArgumentException("world rank " + rank + " is not a member of " + worldRanks);
    throwIfFailed("rank " + rank + ": creating communicator " + name);
    backend.enter();
    Communicator c = new Communicator(name, worldRanks.size(), me, driver().streamCreate(Driver.STREAM_NON_BLOCKING, options.priorityStreams()));
    comms.add(c);
    String where = "rank " + rank + ": creating NCCL communicator " + name;
    try {
      byte[] id = NcclPreflight.uniqueId(store, "nccl/id/" + key, me == 0, nccl::uniqueId, options.connectTimeout());
      long deadline = System.nanoTime() + options.connectTimeout().toNanos();
      c.handle = nccl.initRankNonBlocking(worldRanks.size(), id, me);
      settle(c, Nccl.IN_PROGRESS, where, deadline);
      splitBlocking(c, me, where, deadline);
    } catch (StoreException | CudaException e) {
      throw fail(where + " failed: " + e.getMessage());
    }
    return c;
  }

  /**
   * Replaces {@code c}'s non-blocking handle by a blocking split of it (fast launches), keeping the original as
   * {@code c.parent}. If the split fails the communicator stays non-blocking: correct, only slower to launch.
   */
  private void splitBlocking(Communicator c, int me, String where, long deadline) {
    long parent = c.handle;
    try {
      long child = nccl.splitBlocking(parent, me, () -> requireSettled(parent, deadline, "ncclCommSplit"));
      requireSettled(child, deadline, "the split communicator");
      c.parent = parent;
      c.handle = child;
    } catch (CudaException e) {
      requireSettled(parent, deadline, "the communicator after a failed split");
      log.println("colossal4j NCCL: " + where + ": no blocking split (" + e.getMessage() + "); operating on the non-blocking communicator");
    }
  }

  /** Polls {@code comm}'s asynchronous state until it leaves IN_PROGRESS; an error or the deadline is a CudaException. */
  private void requireSettled(long comm, long deadline, String what) {
    while (true) {
      int st = nccl.asyncError(comm);
      if (st == Nccl.SUCCESS) return;
      if (st != Nccl.IN_PROGRESS) throw new CudaException("libnccl " + what + ": " + nccl.describe(st) + " (" + st + ")", st);
      if (System.nanoTime() > deadline) throw new CudaException("libnccl " + what + ": still in progress at the connect timeout");
      LockSupport.parkNanos(200_000);
    }
  }

  /**
   * Waits while NCCL reports {@code ncclInProgress} on {@code c} (non-blocking creation and launches), until
   * {@code deadlineNanos}; an error or the deadline fails the job.
   */
  void settle(Communicator c, int status, String where, long deadlineNanos) {
    long spinUntil = System.nanoTime() + 200_000;   // launches finish within microseconds: spin before sleeping
    while (status == Nccl.IN_PROGRESS) {
      throwIfFailed(where);
      status = nccl.asyncError(c.handle);
      if (status == Nccl.SUCCESS) return;
      if (status != Nccl.IN_PROGRESS) throw fail(where + ": NCCL reported " + nccl.describe(status) + " (" + status + ")" + lastError(c));
      long now = System.nanoTime();
      if (now > deadlineNanos) throw fail(where + ": still in progress after " + options.connectTimeout().toSeconds() + " s (a peer did not join)");
      if (now < spinUntil) Thread.onSpinWait();
      else LockSupport.parkNanos(100_000);
    }
  }

  private String lastError(Communicator c) {
    String last = nccl.lastError(c.handle);
    return last.isBlank() || last.equals("(null)") ? "" : "; NCCL says: " + last.strip();
  }

  /** Hands a queued operation to the watchdog. */
  void watch(NcclWork w) { pending.add(w); }

  // ---------------------------------------------------------------- failure

  void throwIfFailed(String where) {
    CollectiveException f = failed;
    if (f != null) throw new CollectiveException(where + " refused: the job failed: " + f.getMessage(), f);
  }

  /**
   * Records the first failure, tells the other ranks through the store, aborts every communicator, and returns
   * the exception to throw. Later calls return the first failure.
   */
  CollectiveException fail(String message) {
    synchronized (this) {
      if (failed != null) return new CollectiveException(message + " (after an earlier failure: " + failed.getMessage() + ")", failed);
      failed = new CollectiveException(message);
    }
    log.println("colossal4j NCCL: " + message + "; aborting every communicator of rank " + rank);
    try {
      watchStore.set(FAILURE, message.getBytes(StandardCharsets.UTF_8));
      watchStore.add(FAILED, 1);
    } catch (RuntimeException e) {
      log.println("colossal4j NCCL: rank " + rank + " could not tell the other ranks through the store: " + e.getMessage());
    }
    abortAll();
    if (options.haltOnFailure()) haltLater();
    return failed;
  }

  private void abortAll() {
    for (NcclWork w : pending) w.abandon();
    pending.clear();
    for (Communicator c : comms) {
      if (c.aborted || c.handle == 0) continue;
      c.aborted = true;
      for (long h : new long[] {c.handle, c.parent}) {
        if (h == 0) continue;
        try {
          nccl.abort(h);
        } catch (RuntimeException e) {
          log.println("colossal4j NCCL: aborting " + c.name + ": " + e.getMessage());
        }
      }
    }
  }

  /** A launched rank must not outlive a failure even if its main thread is stuck elsewhere: exit after a grace period. */
  private void haltLater() {
    Thread.ofPlatform().daemon().start(() -> {
      LockSupport.parkNanos(Duration.ofSeconds(30).toNanos());
      log.println("colossal4j NCCL: rank " + rank + " exiting after the failure above");
      Runtime.getRuntime().halt(1);
    });
  }

  /** The watchdog: completions and timeouts every few ms, NCCL's asynchronous errors and other ranks' notices every second. */
  private void watch() {
    long nextSlow = 0;
    while (!closed && failed == null) {
      LockSupport.parkNanos(5_000_000);
      try {
        backend.enter();
        long now = System.nanoTime();
        for (NcclWork w : pending) {
          if (w.poll()) pending.remove(w);
          else if (now - w.startNanos > options.timeout().toNanos())
            fail(w.where + ": not finished after " + options.timeout().toSeconds() + " s (a peer died, is stuck, or issued a different operation)");
        }
        if (now < nextSlow || failed != null) continue;
        nextSlow = now + 1_000_000_000L;
        for (Communicator c : comms) {
          if (c.aborted || c.handle == 0) continue;
          int st = nccl.asyncError(c.handle);
          if (st != Nccl.SUCCESS && st != Nccl.IN_PROGRESS)
            fail("rank " + rank + ": communicator " + c.name + ": NCCL reported " + nccl.describe(st) + " (" + st + ")" + lastError(c));
        }
        if (watchStore.add(FAILED, 0) > 0)
          fail("rank " + rank + ": stopped because another rank failed: " + new String(watchStore.get(FAILURE, Duration.ofSeconds(10)), StandardCharsets.UTF_8));
      } catch (RuntimeException e) {
        if (!closed) fail("rank " + rank + ": NCCL watchdog: " + e.getMessage());
      }
    }
  }

  // ---------------------------------------------------------------- shutdown

  /** Waits for queued work, destroys the communicators (or aborts them after a failure), stops the watchdog, closes the store. */
  synchronized void close() {
    if (closed) return;
    closed = true;
    watchdog.interrupt();
    try {
      watchdog.join(2_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    try {
      if (failed == null) {
        backend.enter();
        for (Communicator c : comms) if (c.handle != 0) driver().streamSynchronize(c.stream);
      }
      for (Communicator c : comms) {
        if (c.handle == 0 || c.aborted) continue;
        c.aborted = true;
        for (long h : new long[] {c.handle, c.parent}) {   // the split child first: it shares the parent's resources
          if (h == 0) continue;
          if (failed == null) nccl.destroy(h);
          else nccl.abort(h);
        }
      }
      for (Communicator c : comms) driver().streamDestroy(c.stream);
    } catch (RuntimeException e) {
      log.println("colossal4j NCCL: closing rank " + rank + ": " + e.getMessage());
    }
    try {
      if (onClose != null) onClose.close();
    } catch (Exception e) {
      // closing the store at exit: nothing left to report to
    }
  }
}
