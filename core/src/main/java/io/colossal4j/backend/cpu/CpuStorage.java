package io.colossal4j.backend.cpu;

import io.colossal4j.backend.Backend;
import io.colossal4j.tensor.MemoryCategory;
import io.colossal4j.tensor.Storage;
import io.colossal4j.tensor.TensorException;
import java.lang.foreign.MemorySegment;

/** Host memory from the {@link CpuAllocator}'s pool; {@link #segment()} is exactly {@code byteSize()} long. */
public final class CpuStorage extends Storage {
  private final MemorySegment segment;
  private final Runnable returnToPool;
  private volatile boolean released;

  CpuStorage(Backend backend, long byteSize, MemoryCategory category, MemorySegment segment, Runnable returnToPool) {
    super(backend, byteSize, category);
    this.segment = segment;
    this.returnToPool = returnToPool;
  }

  /** The memory; throws once released, so a use after release is an error rather than a silent read of reused memory. */
  public MemorySegment segment() {
    if (released) throw new TensorException("storage of " + byteSize() + " bytes was released and cannot be used");
    return segment;
  }

  @Override public void release() {
    if (released) return;
    released = true;
    returnToPool.run();
  }

  @Override public boolean isReleased() { return released; }
}
