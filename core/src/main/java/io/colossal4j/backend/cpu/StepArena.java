package io.colossal4j.backend.cpu;

import io.colossal4j.backend.Backend;
import io.colossal4j.tensor.MemoryCategory;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * Bump allocation of a step's activations and temporaries from chunks that live as long as the backend.
 * A training step allocates the same sequence of tensors every time, so after the first step the chunks
 * cover the step's peak and no memory is requested from the OS (or zeroed) again: the step allocates
 * nothing but its outputs' headers. At {@link #reset} every storage handed out is marked released, so a
 * tensor that wrongly outlives its step fails on use instead of reading memory reused by the next step.
 * A storage released earlier (its last autograd hold dropped) leaves the live count, so {@link #peakBytes}
 * measures what the step needs at once; its bytes are not bump-reused before the step ends (cheap, and the
 * CPU's memory is not the constraint the GPU's is).
 * Used by one thread (the one that opened the step).
 */
final class StepArena {
  private static final long CHUNK = 64L << 20;
  private static final long ALIGN = 64;

  private final Arena arena = Arena.ofShared();
  private final List<MemorySegment> chunks = new ArrayList<>();
  private final List<CpuStorage> handedOut = new ArrayList<>();
  private int chunk;
  private long used;
  private long peak;
  private long inUse;

  CpuStorage allocate(Backend backend, long bytes, MemoryCategory category) {
    long size = Math.max(ALIGN, (bytes + ALIGN - 1) / ALIGN * ALIGN);
    while (chunk < chunks.size() && used + size > chunks.get(chunk).byteSize()) { chunk++; used = 0; }
    if (chunk == chunks.size()) {
      chunks.add(arena.allocate(Math.max(CHUNK, size), ALIGN));
      used = 0;
    }
    MemorySegment seg = chunks.get(chunk).asSlice(used, bytes);
    used += size;
    inUse += size;
    peak = Math.max(peak, inUse);
    CpuStorage s = new CpuStorage(backend, bytes, category, seg, () -> inUse -= size);
    handedOut.add(s);
    return s;
  }

  /** Ends the step: everything handed out is released and the chunks are reused from the start. */
  void reset() {
    for (CpuStorage s : handedOut) s.release();
    handedOut.clear();
    chunk = 0;
    used = 0;
    inUse = 0;
  }

  long reservedBytes() {
    long n = 0;
    for (MemorySegment c : chunks) n += c.byteSize();
    return n;
  }

  /** The most bytes live at once (handed out and not yet released), size-rounded. */
  long peakBytes() { return peak; }

  void resetPeak() { peak = inUse; }
}
