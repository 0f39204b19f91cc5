package io.colossal4j.distributed.cpu;

import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.backend.cpu.CpuStorage;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.MemoryCategory;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Storage;
import io.colossal4j.tensor.Tensor;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * The shared buffers of one group whose members all run on one host ({@link CpuProcessGroup#allocateShared}):
 * buffer k is one mapped file {@code c4j-<group file>-b<k>} holding every member's copy, member j's at
 * {@code j * regionBytes}; a member's tensor is its own region, and it reaches its peers' regions through the
 * same mapping, which is what lets {@link ShmAllReduce#allReduceShared} reduce in place. Allocation is a
 * collective: each member maps the file, then the members exchange a signal whose header carries the
 * operation, dtype and numel (so a member that asked for another size or dtype fails the job, named, before
 * anything is shared), and once every member has mapped it the file's name goes ({@link ShmFiles}: nothing
 * stays in /dev/shm even if a member dies later). The mappings are unmapped, and the tensors' storages
 * released, when the group closes. Thread-safe.
 */
final class ShmBuffers implements AutoCloseable {
  /** One buffer: its index in allocation order, the arena that owns the mapping, and the region stride in bytes. */
  record Buffer(int index, Arena arena, MemorySegment mapping, long regionBytes, CpuStorage storage) {
    /** Byte offset in {@link #mapping} of element {@code element} of member j's region. */
    long at(int member, long element, int elementBytes) { return member * regionBytes + element * elementBytes; }
  }

  /** A tensor found in a buffer: the buffer and the tensor's first element within it. */
  record Placed(Buffer buffer, long offset) {}

  private final String fileBase;
  private final int n;
  private final int r;
  private final List<Buffer> buffers = new ArrayList<>();
  private final Map<Storage, Buffer> byStorage = new IdentityHashMap<>();
  private boolean closed;
  /** Allocations so far (the next buffer's index): the same on every member, and never reused, so no file name is. */
  private int allocations;
  /** Bytes this member may still reserve (tests lower it to act out a full file system). */
  private long reserveLimit = Long.MAX_VALUE;

  ShmBuffers(String fileBase, int n, int r) {
    this.fileBase = fileBase;
    this.n = n;
    this.r = r;
  }

  /**
   * Maps buffer number {@link #allocations} for a tensor of {@code shape} and {@code dtype} (zero-filled: the
   * file is new) and returns this member's tensor on it, or null if the file system could not provide this
   * member's region (reserved by writing it, so no later touch of the mapping can fault). Runs as the group's
   * operation {@code run}.
   */
  Tensor allocate(OpRun run, Shape shape, DType dtype, CpuBackend backend, MemoryCategory category) {
    long bytes = Math.max(1, shape.numel()) * dtype.byteSize(), regionBytes = (bytes + 4095) & ~4095L;
    int index;
    synchronized (this) {
      if (closed) throw new IllegalStateException("the process group was closed");
      index = allocations++;
    }
    var path = ShmFiles.path(fileBase + "-b" + index);
    Arena arena = Arena.ofShared();
    ShmFiles.Mapped file;
    try {
      file = ShmFiles.map(path, n * regionBytes, arena);
    } catch (IOException e) {
      arena.close();
      throw new io.colossal4j.distributed.CollectiveException(run.where() + ": cannot map shared memory " + path + ": " + e.getMessage(), e);
    }
    boolean reserved = reserve(file, regionBytes);
    try {
      for (int j = 0; j < n; j++) if (j != r) run.sendSignal(j, 0);
      for (int j = 0; j < n; j++) if (j != r) run.recvSignal(j, 0);   // checks their dtype and numel
    } catch (RuntimeException e) {
      ShmFiles.release(file);
      arena.close();
      throw e;
    }
    ShmFiles.release(file);   // every member has mapped it: the name can go, the mappings stay
    if (!reserved) {
      arena.close();
      return null;
    }
    MemorySegment mine = file.memory().asSlice(r * regionBytes, bytes);
    CpuStorage storage = backend.external(mine, category, () -> {});
    Buffer b = new Buffer(index, arena, file.memory(), regionBytes, storage);
    synchronized (this) {
      if (closed) {
        storage.release();
        arena.close();
        throw new IllegalStateException("the process group was closed");
      }
      buffers.add(b);
      byStorage.put(storage, b);
    }
    return Tensor.onStorage(storage, shape, dtype);
  }

  /** Writes zeros over this member's region through the file (tmpfs allocates the pages or says it is full). */
  private boolean reserve(ShmFiles.Mapped file, long regionBytes) {
    synchronized (this) {
      if (regionBytes > reserveLimit) return false;
      reserveLimit -= regionBytes;
    }
    java.nio.ByteBuffer zeros = java.nio.ByteBuffer.allocateDirect((int) Math.min(regionBytes, 1 << 20));
    try {
      for (long at = r * regionBytes, stop = at + regionBytes; at < stop; ) {
        zeros.clear().limit((int) Math.min(zeros.capacity(), stop - at));
        at += file.lockHolder().write(zeros, at);
      }
      return true;
    } catch (IOException full) {
      return false;
    }
  }

  /** Tests: this member may reserve at most {@code bytes} more. */
  synchronized void limitReservations(long bytes) { reserveLimit = bytes; }

  /** Unregisters and unmaps the buffer of {@code t} (another member could not reserve its part: nobody shares it). */
  synchronized void drop(Tensor t) {
    Buffer b = byStorage.remove(t.storage());
    if (b == null) return;
    buffers.remove(b);
    b.storage.release();
    b.arena.close();
  }

  /** The buffer {@code t} lives in, with its offset, or null (t is contiguous: checked by the group). */
  synchronized Placed find(Tensor t) {
    Buffer b = byStorage.get(t.storage());
    return b == null ? null : new Placed(b, t.offset());
  }

  /** Releases every buffer's storage (later use of its tensors fails) and unmaps it. Idempotent. */
  @Override public synchronized void close() {
    if (closed) return;
    closed = true;
    for (Buffer b : buffers) {
      b.storage.release();
      b.arena.close();
    }
    buffers.clear();
    byStorage.clear();
  }
}
