package io.colossal4j.backend.cuda;

import io.colossal4j.backend.Backend;
import io.colossal4j.tensor.MemoryCategory;
import io.colossal4j.tensor.Storage;
import io.colossal4j.tensor.TensorException;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A block of device memory from the {@link CachingAllocator}, {@code byteSize()} usable bytes at
 * {@link #pointer()}. Released explicitly or when unreachable; a released storage refuses to hand out
 * its pointer, so no kernel is ever launched on memory that was given back.
 *
 * <p>{@code sideUse}: the last side-stream job that reads or writes this block (0: none), shared with the
 * release action so the allocator can make the block's next user wait for that job.
 */
public final class CudaStorage extends Storage {
  private final long pointer;
  private final Runnable giveBack;
  private final AtomicLong sideUse;
  private volatile boolean released;

  CudaStorage(Backend backend, long byteSize, MemoryCategory category, long pointer, Runnable giveBack, AtomicLong sideUse) {
    super(backend, byteSize, category);
    this.pointer = pointer;
    this.giveBack = giveBack;
    this.sideUse = sideUse;
  }

  /** The device address; throws once released. */
  public long pointer() {
    if (released) throw new TensorException("CUDA storage of " + byteSize() + " bytes on " + device() + " was released and cannot be used");
    return pointer;
  }

  /** Records that side-stream job {@code seq} uses this block (see {@link CudaBackend#sideEnd}). */
  void markSideUse(long seq) { sideUse.accumulateAndGet(seq, Math::max); }

  @Override public void release() {
    if (released) return;
    released = true;
    giveBack.run();
  }

  @Override public boolean isReleased() { return released; }
}
