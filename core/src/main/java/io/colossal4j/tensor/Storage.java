package io.colossal4j.tensor;

import io.colossal4j.backend.Backend;

/**
 * One allocation on one device, owned by exactly one {@code Storage}; tensors are views into it.
 * The backend that allocated it computes on it ({@link Tensor#backend()}), so ops dispatch without any
 * global registry. Memory goes back to the backend's allocator when {@link #release()} is called by its
 * owner (the caller guarantees no view is used afterwards), when the step that owns it ends, when its last
 * hold is dropped, or (storage outside any step only) when it becomes unreachable.
 *
 * <p><b>Holds.</b> Inside a training step the storage's owner is the step ({@link #stepOwned()}, set by the
 * backend's step ledger). Who still needs a step-owned storage is counted explicitly: an autograd node holds
 * each storage it saved for its backward, and the backward engine holds each gradient in flight. When the
 * count returns to zero through {@link #unhold()} nobody can read the storage any more (forward has ended
 * and every node that saved it has run), so its memory goes back to the allocator at once; a view used
 * afterwards fails on its released storage instead of reading reused memory. A storage that was never held
 * is not released by the count (the step releases it at its end). Outside a step the count is kept but
 * releases nothing. Holds are taken and dropped by the step's thread; the methods are synchronised anyway
 * so a stray use from another thread cannot corrupt the count.
 */
public abstract class Storage {
  private final Backend backend;
  private final long byteSize;
  private final MemoryCategory category;
  private int holds;
  private boolean stepOwned;

  protected Storage(Backend backend, long byteSize, MemoryCategory category) {
    this.backend = backend;
    this.byteSize = byteSize;
    this.category = category;
  }

  public final Backend backend() { return backend; }

  public final Device device() { return backend.device(); }

  public final long byteSize() { return byteSize; }

  public final MemoryCategory category() { return category; }

  /** Marks this storage as owned by the open step (called by the backend's step ledger at allocation). */
  public final synchronized void markStepOwned() { stepOwned = true; }

  /** Whether the open step owns this storage (released at its end or when its last hold is dropped). */
  public final synchronized boolean stepOwned() { return stepOwned; }

  /** Adds one holder (a node that saved this storage, a gradient in flight). */
  public final synchronized void hold() { holds++; }

  /** Drops one holder; the last one releases a step-owned storage. */
  public final void unhold() {
    boolean last;
    synchronized (this) {
      if (holds <= 0) throw new TensorException("unhold() on a storage of " + byteSize + " bytes that has no holder");
      last = --holds == 0 && stepOwned;
    }
    if (last) release();
  }

  /** Drops one holder without releasing (the holder hands the storage back to whoever else references it). */
  public final synchronized void unholdKeep() {
    if (holds <= 0) throw new TensorException("unholdKeep() on a storage of " + byteSize + " bytes that has no holder");
    holds--;
  }

  public final synchronized int holds() { return holds; }

  /** Returns the memory to the allocator now. Idempotent. */
  public abstract void release();

  /** True once {@link #release()} ran; kernels refuse released storage instead of touching freed memory. */
  public abstract boolean isReleased();
}
