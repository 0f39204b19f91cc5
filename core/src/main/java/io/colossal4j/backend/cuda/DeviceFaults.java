package io.colossal4j.backend.cuda;

import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.MemoryCategory;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

/**
 * Faults that only the device can see (an index out of range: the index values live in device memory).
 * Each checking op gets a slot of four i64 (flag, value, position, limit) in one small device buffer; its
 * kernel skips the bad element and records the first one. {@link #check} runs after the backend synchronises
 * (so the report comes at the next host copy or {@code synchronize()}, without stalling the stream per op)
 * and throws a {@link TensorException} naming the op, the value, its position and the valid range.
 * Thread-safe.
 */
final class DeviceFaults implements AutoCloseable {
  private static final int SLOTS = 8, SLOT_LONGS = 4;
  /** Bytes of the fault words (what {@link #copyTo} copies). */
  static final long BYTES = (long) SLOTS * SLOT_LONGS * Long.BYTES;

  private final CudaBackend backend;
  private final List<String> ops = new ArrayList<>();
  private Tensor words;
  private volatile boolean armed;

  DeviceFaults(CudaBackend backend) { this.backend = backend; }

  /** The device address of {@code op}'s slot; marks the faults as worth checking at the next synchronisation. */
  synchronized long slot(String op) {
    backend.enter();
    if (words == null) {
      words = backend.persistent(Shape.of(SLOTS * SLOT_LONGS), DType.I64);
      backend.driver().memsetBytes(backend.pointer(words), (byte) 0, (long) SLOTS * SLOT_LONGS * Long.BYTES, backend.stream());
    }
    int i = ops.indexOf(op);
    if (i < 0) {
      if (ops.size() == SLOTS) throw new IllegalStateException("more than " + SLOTS + " ops record device faults");
      ops.add(op);
      i = ops.size() - 1;
    }
    armed = true;
    return backend.pointer(words) + (long) i * SLOT_LONGS * Long.BYTES;
  }

  /** Reads the slots (the stream must be synchronised) and throws for the first recorded fault, clearing all. */
  void check() {
    if (!armed) return;
    long[] v;
    synchronized (this) {
      armed = false;
      backend.enter();
      try (Arena a = Arena.ofConfined()) {
        MemorySegment host = a.allocate((long) SLOTS * SLOT_LONGS * Long.BYTES, 8);
        backend.driver().copyDeviceToHost(host, backend.pointer(words), host.byteSize(), backend.stream());
        backend.driver().streamSynchronize(backend.stream());
        v = host.toArray(ValueLayout.JAVA_LONG);
      }
      boolean any = false;
      for (int i = 0; i < ops.size(); i++) any |= v[i * SLOT_LONGS] != 0;
      if (!any) return;
      backend.driver().memsetBytes(backend.pointer(words), (byte) 0, (long) SLOTS * SLOT_LONGS * Long.BYTES, backend.stream());
    }
    for (int i = 0; i < ops.size(); i++) {
      int b = i * SLOT_LONGS;
      if (v[b] != 0)
        throw new TensorException(ops.get(i) + " on " + backend.name() + ": index " + v[b + 1] + " at position " + v[b + 2]
            + " is out of range (valid: 0.." + (v[b + 3] - 1) + "); that element was skipped");
    }
  }

  /**
   * Queues a copy of the fault words into page-locked host memory {@code dst} ({@link #BYTES}) on the stream, so a
   * caller that waits for that point only (an event, not the whole stream) can see the faults recorded so far;
   * false, nothing queued, when no op has armed them.
   */
  synchronized boolean copyTo(MemorySegment dst) {
    if (!armed || words == null) return false;
    backend.driver().copyDeviceToHost(dst, backend.pointer(words), BYTES, backend.stream());
    return true;
  }

  /** After a {@link #copyTo} has completed: when the copied words record a fault, reports it as {@link #check} does. */
  void checkCopied(MemorySegment copied) {
    for (int i = 0; i < SLOTS; i++)
      if (copied.get(ValueLayout.JAVA_LONG, (long) i * SLOT_LONGS * Long.BYTES) != 0) {
        check();   // synchronises, reads the words again, clears them and throws
        return;
      }
  }

  @Override public synchronized void close() {
    if (words != null) words.storage().release();
    words = null;
  }
}
