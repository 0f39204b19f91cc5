package io.colossal4j.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.tensor.MemoryCategory;
import java.lang.foreign.MemorySegment;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;

/**
 * Host memory of a backend that is dropped without being closed goes back to the OS once the backend is
 * unreachable: the allocator's cached blocks and the step arena's chunks live in shared arenas, which the GC alone
 * would never free (test suites and notebooks create many backends). Observed through a segment of the memory
 * itself: its arena is closed once the owner has been collected.
 */
class UnreachableBackendMemoryTest {
  @Test void anUnreachableAllocatorFreesItsCachedBlocks() {
    MemorySegment seg = cachedBlockOfADroppedAllocator();
    assertTrue(freedWithin(() -> !seg.scope().isAlive(), 100), "the cached block's memory was not freed after the allocator was collected");
  }

  @Test void anUnreachableStepArenaFreesItsChunks() {
    MemorySegment seg = chunkOfADroppedArena();
    assertTrue(freedWithin(() -> !seg.scope().isAlive(), 100), "the step arena's chunk was not freed after the arena was collected");
  }

  @Test void aLiveAllocatorKeepsItsCache() {
    CpuAllocator allocator = new CpuAllocator(1L << 30, Long.MAX_VALUE);
    CpuStorage s = allocator.allocate(null, 1 << 20, MemoryCategory.TEMPORARY);
    MemorySegment seg = s.segment();
    s.release();
    assertFalse(freedWithin(() -> !seg.scope().isAlive(), 10), "a reachable allocator's cache must stay");
    allocator.emptyCache();
    assertFalse(seg.scope().isAlive());
  }

  private static MemorySegment cachedBlockOfADroppedAllocator() {
    CpuAllocator allocator = new CpuAllocator(1L << 30, Long.MAX_VALUE);
    CpuStorage s = allocator.allocate(null, 1 << 20, MemoryCategory.TEMPORARY);
    MemorySegment seg = s.segment();
    s.release();   // back into the cache
    return seg;
  }

  private static MemorySegment chunkOfADroppedArena() {
    StepArena arena = new StepArena();
    CpuStorage s = arena.allocate(null, 4096, MemoryCategory.ACTIVATION);
    MemorySegment seg = s.segment();
    arena.reset();
    return seg;
  }

  /** Collects and waits (up to tries × 0.1 s) for {@code done}; cleaners run on their own thread after a collection. */
  private static boolean freedWithin(Supplier<Boolean> done, int tries) {
    for (int i = 0; i < tries; i++) {
      System.gc();
      if (done.get()) return true;
      try {
        Thread.sleep(100);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return false;
      }
    }
    return done.get();
  }
}
