package io.colossal4j.distributed.cpu;

import io.colossal4j.distributed.CollectiveException;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Received messages of one rank, matched by exact {@link Header.Key}, plus the rank's failure state.
 * Transports deliver into it from their reader threads; operations wait on it. Once failed (a peer died,
 * an operation timed out, a peer aborted) every wait throws, so nothing hangs after the first failure.
 * Thread-safe.
 */
final class Mailbox {
  private final ReentrantLock lock = new ReentrantLock();
  private final Condition changed = lock.newCondition();
  private final Map<Header.Key, Message> messages = new HashMap<>();
  private final String[] departed;
  /** Written under the lock, read without it by shared-memory waiters. */
  private volatile CollectiveException failure;
  /** Bumped on every delivery or state change, read without the lock by spinning waiters. */
  private volatile long version;

  /**
   * Spin iterations before a waiter parks. A small message's reply often arrives within tens of
   * microseconds, sooner than a park/unpark round trip; but a spinning waiter holds a core, which on a
   * machine with few cores delays the very reader thread that would deliver, so it spins only with 4+ cores.
   */
  private static final int SPINS = Runtime.getRuntime().availableProcessors() >= 4 ? 2000 : 0;

  Mailbox(int worldSize) { this.departed = new String[worldSize]; }

  void deliver(Message m) {
    lock.lock();
    try {
      version++;
      if (messages.putIfAbsent(m.header().key(), m) != null)
        failLocked(new CollectiveException("received two messages for " + m.header().key() + "; the peers' operation order differs"));
      changed.signalAll();
    } finally {
      lock.unlock();
    }
  }

  /** Wakes every waiter (a peer changed shared memory that a waiter outside the mailbox sleeps on). */
  void poke() {
    lock.lock();
    try {
      version++;
      changed.signalAll();
    } finally {
      lock.unlock();
    }
  }

  /** A counter that changes on every delivery, failure or {@link #poke}: read it before deciding to sleep. */
  long version() { return version; }

  /** Sleeps until the version differs from {@code seen} (or at most {@code nanos}); returns at once if it already does. */
  void awaitChange(long seen, long nanos) {
    lock.lock();
    try {
      long left = nanos;
      while (version == seen && left > 0) left = changed.awaitNanos(left);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new CollectiveException("interrupted while waiting for shared memory", e);
    } finally {
      lock.unlock();
    }
  }

  /** Marks the job failed (first reason wins) and wakes every waiter. */
  void fail(CollectiveException reason) {
    lock.lock();
    try {
      failLocked(reason);
    } finally {
      lock.unlock();
    }
  }

  private void failLocked(CollectiveException reason) {
    version++;
    if (failure == null) failure = reason;
    changed.signalAll();
  }

  /** The peer closed its group normally: waits for its messages fail instead of hanging. */
  void departed(int peer, String how) {
    lock.lock();
    try {
      departed[peer] = how;
      version++;
      changed.signalAll();
    } finally {
      lock.unlock();
    }
  }

  CollectiveException failure() { return failure; }

  /**
   * For waiters outside the mailbox (shared memory): throws, prefixed by {@code where}, if the job failed
   * or world rank {@code src} closed its group, or, past {@code deadlineNanos}, a timeout that also fails
   * the job.
   */
  void check(int src, long deadlineNanos, String where, long timeoutMillis) {
    lock.lock();
    try {
      checkLocked(src, deadlineNanos, where, timeoutMillis);
    } finally {
      lock.unlock();
    }
  }

  private void checkLocked(int src, long deadlineNanos, String where, long timeoutMillis) {
    if (failure != null) throw new CollectiveException(where + " failed: " + failure.getMessage(), failure);
    if (departed[src] != null) throw new CollectiveException(where + " failed: world rank " + src + " " + departed[src]);
    if (deadlineNanos - System.nanoTime() <= 0) {
      var e = new CollectiveException(where + " timed out after " + timeoutMillis + " ms waiting for world rank " + src
          + " (the peer is stuck, or the ranks issue different collectives)");
      failLocked(e);
      throw e;
    }
  }

  /**
   * Takes the message with {@code key}, waiting until {@code deadlineNanos} (System.nanoTime). Throws a
   * {@link CollectiveException} prefixed by {@code where} on failure, departure of the sender or timeout.
   */
  Message take(Header.Key key, long deadlineNanos, String where, long timeoutMillis) {
    lock.lock();
    try {
      boolean spun = SPINS == 0;
      while (true) {
        Message m = messages.remove(key);
        if (m != null) return m;
        checkLocked(key.src(), deadlineNanos, where, timeoutMillis);
        long left = Math.max(1, deadlineNanos - System.nanoTime());
        if (!spun) {
          spun = true;
          long seen = version;
          lock.unlock();
          try {
            for (int i = 0; i < SPINS && version == seen; i++) Thread.onSpinWait();
          } finally {
            lock.lock();
          }
          continue;
        }
        changed.awaitNanos(Math.min(left, TimeUnit.SECONDS.toNanos(1)));
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new CollectiveException(where + " was interrupted", e);
    } finally {
      lock.unlock();
    }
  }
}
