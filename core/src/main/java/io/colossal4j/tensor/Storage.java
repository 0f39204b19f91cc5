package io.colossal4j.tensor;

import io.colossal4j.backend.Backend;

/**
 * One allocation on one device, owned by exactly one {@code Storage}; tensors are views into it.
 * The backend that allocated it computes on it ({@link Tensor#backend()}), so ops dispatch without any
 * global registry. Memory goes back to the backend's allocator when the storage becomes unreachable or
 * when {@link #release()} is called by its owner (the caller guarantees no view is used afterwards).
 */
public abstract class Storage {
  private final Backend backend;
  private final long byteSize;
  private final MemoryCategory category;

  protected Storage(Backend backend, long byteSize, MemoryCategory category) {
    this.backend = backend;
    this.byteSize = byteSize;
    this.category = category;
  }

  public final Backend backend() { return backend; }

  public final Device device() { return backend.device(); }

  public final long byteSize() { return byteSize; }

  public final MemoryCategory category() { return category; }

  /** Returns the memory to the allocator now. Idempotent. */
  public abstract void release();

  /** True once {@link #release()} ran; kernels refuse released storage instead of touching freed memory. */
  public abstract boolean isReleased();
}
