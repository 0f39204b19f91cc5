package io.colossal4j.distributed.nccl;

import io.colossal4j.distributed.CollectiveException;
import io.colossal4j.distributed.Work;
import java.time.Duration;
import java.util.concurrent.locks.LockSupport;

/**
 * An NCCL operation queued on its communicator's stream, marked by {@code event} recorded after it.
 * {@link #await()} orders the backend's compute stream after the operation (PyTorch's {@code Work.wait()}):
 * every later kernel and host copy of the backend sees the result, without the host waiting. A host-blocking
 * work (the barrier) makes the host wait too. The watchdog polls {@link #poll()} and fails the job when the
 * operation outlives the timeout.
 *
 * <p>The event has two holders, the watchdog and the awaiting caller; the last to let go destroys it. The
 * tensors of the operation are referenced until it completes, so the allocator cannot recycle their memory.
 */
final class NcclWork implements Work {
  private final NcclWorld world;
  final String where;
  private final long event;
  final long startNanos = System.nanoTime();
  private final boolean hostBlocking;
  private Object keep;
  private int holders = 2;
  private boolean awaited;
  private volatile boolean done;

  NcclWork(NcclWorld world, String where, long event, boolean hostBlocking, Object keep) {
    this.world = world;
    this.where = where;
    this.event = event;
    this.hostBlocking = hostBlocking;
    this.keep = keep;
  }

  /** The watchdog's check: true once the operation finished (then the watchdog forgets this work). */
  synchronized boolean poll() {
    if (done) return true;
    if (world.driver().eventDone(event)) {
      done = true;
      keep = null;
      release();
    }
    return done;
  }

  /** For the watchdog after a failure: stop watching without querying the event again. */
  synchronized void abandon() {
    if (done) return;
    done = true;
    keep = null;
    release();
  }

  private void release() {
    if (--holders == 0) world.driver().eventDestroy(event);
  }

  @Override public void await() {
    world.throwIfFailed(where);
    if (hostBlocking) {
      while (!isDone()) {
        world.throwIfFailed(where);
        LockSupport.parkNanos(20_000);
      }
    }
    synchronized (this) {
      if (!awaited) {
        awaited = true;
        world.backend().enter();
        world.driver().streamWaitEvent(world.backend().stream(), event);
        release();
      }
    }
    world.throwIfFailed(where);
  }

  @Override public void await(Duration limit) {
    long deadline = System.nanoTime() + limit.toNanos();
    while (!isDone()) {
      world.throwIfFailed(where);
      if (System.nanoTime() > deadline) throw new CollectiveException(where + ": not finished after " + limit.toMillis() + " ms");
      LockSupport.parkNanos(50_000);
    }
    await();
  }

  @Override public boolean isDone() { return done || poll(); }

  @Override public String toString() { return "NcclWork(" + where + (done ? ", done" : "") + ")"; }
}
