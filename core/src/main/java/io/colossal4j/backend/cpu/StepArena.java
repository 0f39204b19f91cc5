package io.colossal4j.backend.cpu;

import io.colossal4j.backend.Backend;
import io.colossal4j.tensor.MemoryCategory;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * A step's activations and temporaries, carved from chunks that live as long as the backend. A training step
 * allocates the same sequence of tensors every time, so after the first step the chunks cover the step's peak
 * and no memory is requested from the OS (or zeroed) again: the step allocates nothing but its outputs' headers.
 *
 * <p><b>Reuse within a step.</b> A storage released before the step ends (its last autograd hold dropped, a
 * backward rule's temporary) gives its block back at once, and the next allocation that fits takes it: the
 * smallest free block that fits, the most recently freed among equals ({@link FreeBlocks}); a block freed at the
 * top of the current chunk lowers the bump pointer instead. Freed neighbours merge. So a memory-bound kernel
 * mostly writes into memory the step touched a moment ago (in cache) rather than into fresh bump memory, and
 * the chunks span about what the step holds at once instead of everything it ever allocated.
 *
 * <p><b>Contracts.</b> At {@link #reset} every storage handed out in the step is marked released, so a tensor
 * that wrongly outlives its step fails on use instead of reading memory reused by the next step (within a step
 * the same holds for early releases: a released storage refuses use, so reuse of its block is invisible).
 * {@link #peakBytes} is the most bytes live at once (size-rounded), whatever the placement. Blocks are
 * 64-byte aligned and a multiple of 64 bytes; the chunks are on huge pages where the OS offers them ({@link HostPages}). Used by one thread (the one that opened the step), including
 * the releases; a release from another thread is accepted, but its block waits for the step's end.
 */
final class StepArena {
  private static final long CHUNK = 64L << 20;
  private static final long ALIGN = 64;
  /** A position is {@code chunk << CHUNK_BITS | offset}: sorted positions group by chunk, and blocks of two chunks never look adjacent. */
  private static final int CHUNK_BITS = 40;

  private static final java.lang.ref.Cleaner CLEANER = java.lang.ref.Cleaner.create();

  private final Arena arena = Arena.ofShared();
  {
    // a backend dropped without closing frees its chunks once unreachable (a shared arena is never freed by the GC);
    // every storage handed out holds this arena through its give-back, so none is in use by then
    Arena chunksArena = arena;
    CLEANER.register(this, chunksArena::close);
  }
  private final List<MemorySegment> chunks = new ArrayList<>();
  private final List<CpuStorage> handedOut = new ArrayList<>();
  private final FreeBlocks free = new FreeBlocks();
  private int chunk;
  private long used;
  private long peak;
  private long inUse;
  private boolean resetting;
  /** The thread that allocates (the step's); a release from any other thread is not reused, see {@link #giveBack}. */
  private Thread owner;
  private long reusedBytes;
  private long allocations;

  CpuStorage allocate(Backend backend, long bytes, MemoryCategory category) {
    long size = Math.max(ALIGN, (bytes + ALIGN - 1) / ALIGN * ALIGN);
    owner = Thread.currentThread();
    long pos = free.take(size);
    if (pos >= 0) reusedBytes += size;
    else pos = bump(size);
    MemorySegment seg = chunks.get(chunkOf(pos)).asSlice(offsetOf(pos), bytes);
    inUse += size;
    allocations++;
    peak = Math.max(peak, inUse);
    long at = pos;
    CpuStorage s = new CpuStorage(backend, bytes, category, seg, () -> giveBack(at, size));
    handedOut.add(s);
    return s;
  }

  /** Fresh memory at the bump pointer; a chunk too full for {@code size} leaves its tail as a free block. */
  private long bump(long size) {
    while (chunk < chunks.size() && used + size > chunks.get(chunk).byteSize()) {
      long tail = chunks.get(chunk).byteSize() - used;
      if (tail > 0) free.add(position(chunk, used), tail);
      chunk++;
      used = 0;
    }
    if (chunk == chunks.size()) {
      chunks.add(HostPages.allocate(arena, Math.max(CHUNK, size), ALIGN));
      used = 0;
    }
    long pos = position(chunk, used);
    used += size;
    return pos;
  }

  /**
   * A released storage's block (the release callback; ignored while {@link #reset} releases everything). A release
   * from another thread than the step's (nothing in the step does that; a stray one must not corrupt the free list,
   * which is not thread-safe) leaves its block unused until the step ends, as before blocks were reused.
   */
  private void giveBack(long pos, long size) {
    if (resetting) return;
    inUse -= size;
    if (Thread.currentThread() != owner) return;
    free.add(pos, size);
    long top = free.removeEndingAt(position(chunk, used));   // the block just freed, merged, may end at the bump pointer
    if (top >= 0) used = offsetOf(top);
  }

  /** Ends the step: everything handed out is released and the chunks are reused from the start. */
  void reset() {
    resetting = true;
    try {
      for (CpuStorage s : handedOut) s.release();
    } finally {
      resetting = false;
    }
    handedOut.clear();
    free.clear();
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

  /** Bytes handed out from freed blocks rather than fresh bump memory, over the arena's life (for tests). */
  long reusedBytes() { return reusedBytes; }

  /** Storages handed out over the arena's life. */
  long allocations() { return allocations; }

  /** Free blocks right now (for tests). */
  int freeBlocks() { return free.count(); }

  private static long position(int chunk, long offset) { return (long) chunk << CHUNK_BITS | offset; }

  private static int chunkOf(long pos) { return (int) (pos >>> CHUNK_BITS); }

  private static long offsetOf(long pos) { return pos & ((1L << CHUNK_BITS) - 1); }
}
