package io.colossal4j.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.backend.MemoryStats;
import io.colossal4j.tensor.MemoryCategory;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The caching allocator's policy (size classes, reuse, statistics, cap, OOM report) on a fake device. */
class CachingAllocatorTest {
  /** A device of {@code total} bytes handing out fake addresses; counts calls so reuse is visible. */
  static final class FakeDevice implements DeviceMemory {
    final long total;
    final Map<Long, Long> live = new HashMap<>();
    long next = 0x10000, used, allocs, frees, syncs;

    FakeDevice(long total) { this.total = total; }

    @Override public long allocate(long bytes) {
      if (used + bytes > total) return 0;
      long p = next;
      next += bytes + 4096;
      live.put(p, bytes);
      used += bytes;
      allocs++;
      return p;
    }

    @Override public void free(long pointer) {
      Long b = live.remove(pointer);
      if (b == null) throw new AssertionError("double free or foreign pointer " + pointer);
      used -= b;
      frees++;
    }

    @Override public void synchronize() { syncs++; }

    @Override public long totalBytes() { return total; }
  }

  @Test void sizeClassesRoundUpWithBoundedSlack() {
    assertEquals(512, CachingAllocator.sizeClass(1));
    assertEquals(512, CachingAllocator.sizeClass(512));
    assertEquals(1024, CachingAllocator.sizeClass(513));
    assertEquals(1 << 20, CachingAllocator.sizeClass(1 << 20));
    // above 1 MiB: steps of 1/16 of the next power of two, so slack stays under 6.25% + rounding
    for (long b : new long[] {(1 << 20) + 1, 3_000_000, 100_000_000, 5L << 30}) {
      long c = CachingAllocator.sizeClass(b);
      assertTrue(c >= b && c - b <= b / 4, b + " -> " + c);
    }
  }

  @Test void freedBlocksAreReusedWithoutTouchingTheDevice() {
    FakeDevice dev = new FakeDevice(1L << 30);
    CachingAllocator alloc = new CachingAllocator(dev, Long.MAX_VALUE, "fake:0");
    CachingAllocator.Block a = alloc.allocate(10_000, MemoryCategory.ACTIVATION);
    alloc.release(a, MemoryCategory.ACTIVATION);
    CachingAllocator.Block b = alloc.allocate(9_000, MemoryCategory.GRADIENT);
    assertEquals(a.pointer(), b.pointer(), "same size class reuses the cached block");
    assertEquals(1, dev.allocs);
    // a much smaller request does not take a block more than twice its size
    alloc.release(b, MemoryCategory.GRADIENT);
    CachingAllocator.Block c = alloc.allocate(100, MemoryCategory.TEMPORARY);
    assertNotEquals(a.pointer(), c.pointer());
    assertEquals(2, dev.allocs);
  }

  @Test void aBlockASideJobUsedMakesItsNextUserWaitForThatJobOnly() {
    FakeDevice dev = new FakeDevice(1L << 30);
    java.util.List<Long> waits = new java.util.ArrayList<>();
    CachingAllocator alloc = new CachingAllocator(dev, Long.MAX_VALUE, "fake:0", () -> {}, waits::add);
    CachingAllocator.Block tagged = alloc.allocate(4 << 20, MemoryCategory.ACTIVATION);
    CachingAllocator.Block plain = alloc.allocate(64 << 10, MemoryCategory.ACTIVATION);
    alloc.release(tagged, MemoryCategory.ACTIVATION, 7);
    alloc.release(plain, MemoryCategory.ACTIVATION, 0);
    assertEquals(plain.pointer(), alloc.allocate(64 << 10, MemoryCategory.TEMPORARY).pointer());
    assertEquals(java.util.List.of(), waits, "an untagged block is handed out without a wait");
    CachingAllocator.Block again = alloc.allocate(4 << 20, MemoryCategory.GRADIENT);
    assertEquals(tagged.pointer(), again.pointer());
    assertEquals(java.util.List.of(7L), waits, "the block's next user waits for side job 7");
    // the tag goes with that hand-out: released untagged, the block is reused without another wait
    alloc.release(again, MemoryCategory.GRADIENT);
    alloc.allocate(4 << 20, MemoryCategory.GRADIENT);
    assertEquals(java.util.List.of(7L), waits);
  }

  @Test void emptyingTheCacheDropsSideTagsWithTheBlocks() {
    FakeDevice dev = new FakeDevice(1L << 30);
    java.util.List<Long> waits = new java.util.ArrayList<>();
    CachingAllocator alloc = new CachingAllocator(dev, Long.MAX_VALUE, "fake:0", () -> {}, waits::add);
    CachingAllocator.Block b = alloc.allocate(1 << 20, MemoryCategory.ACTIVATION);
    alloc.release(b, MemoryCategory.ACTIVATION, 3);
    alloc.emptyCache();
    assertEquals(1, dev.syncs, "blocks go back to the device only after a synchronisation (the side stream's too)");
    assertEquals(1, dev.frees);
    alloc.allocate(1 << 20, MemoryCategory.ACTIVATION);   // a new device block, possibly at the same address
    assertEquals(java.util.List.of(), waits);
  }

  @Test void largeRequestsTakeOnlyCloseCachedBlocksAndRequestedBytesAreCounted() {
    FakeDevice dev = new FakeDevice(1L << 30);
    CachingAllocator alloc = new CachingAllocator(dev, Long.MAX_VALUE, "fake:0");
    CachingAllocator.Block big = alloc.allocate(100_000_000, MemoryCategory.ACTIVATION);
    assertEquals(100_000_000, alloc.peakRequested());
    assertTrue(alloc.peakInUse() >= 100_000_000 && alloc.peakInUse() <= 100_000_000 * 17 / 16, "slack under 1/16: " + alloc.peakInUse());
    alloc.release(big, MemoryCategory.ACTIVATION);
    // 60 MB would leave two fifths of a 100 MB block idle: a new device block instead
    CachingAllocator.Block small = alloc.allocate(60_000_000, MemoryCategory.ACTIVATION);
    assertNotEquals(big.pointer(), small.pointer());
    assertEquals(2, dev.allocs);
    // 90 MB is within a quarter: the cached block is reused
    CachingAllocator.Block near = alloc.allocate(90_000_000, MemoryCategory.ACTIVATION);
    assertEquals(big.pointer(), near.pointer());
    assertEquals(2, dev.allocs);
    assertEquals(150_000_000, alloc.peakRequested(), "60 + 90 MB requested at once");
  }

  @Test void statisticsPerCategoryWithPeaks() {
    CachingAllocator alloc = new CachingAllocator(new FakeDevice(1L << 30), Long.MAX_VALUE, "fake:0");
    CachingAllocator.Block p = alloc.allocate(4096, MemoryCategory.PARAMETER);
    CachingAllocator.Block x1 = alloc.allocate(1 << 20, MemoryCategory.ACTIVATION);
    CachingAllocator.Block x2 = alloc.allocate(1 << 20, MemoryCategory.ACTIVATION);
    alloc.release(x1, MemoryCategory.ACTIVATION);
    MemoryStats s = alloc.stats();
    assertEquals(4096, s.current().get(MemoryCategory.PARAMETER));
    assertEquals(1 << 20, s.current().get(MemoryCategory.ACTIVATION));
    assertEquals(2 << 20, s.peak().get(MemoryCategory.ACTIVATION));
    assertEquals(1 << 20, s.cachedBytes());
    alloc.release(x2, MemoryCategory.ACTIVATION);
    alloc.release(p, MemoryCategory.PARAMETER);
    assertEquals(0, alloc.stats().totalCurrent());
    alloc.resetPeaks();
    assertEquals(0, alloc.stats().peak().get(MemoryCategory.ACTIVATION));
  }

  @Test void capEmptiesTheCacheThenReportsWhatIsHeldAndWhatWouldHelp() {
    FakeDevice dev = new FakeDevice(1L << 40);
    long cap = 64L << 20;
    CachingAllocator alloc = new CachingAllocator(dev, cap, "fake:0");
    CachingAllocator.Block w = alloc.allocate(8L << 20, MemoryCategory.PARAMETER);
    CachingAllocator.Block a = alloc.allocate(40L << 20, MemoryCategory.ACTIVATION);
    CachingAllocator.Block t = alloc.allocate(8L << 20, MemoryCategory.TEMPORARY);
    alloc.release(t, MemoryCategory.TEMPORARY);
    // 48 MiB in use + 8 MiB cached: a 24 MiB request exceeds the cap even after the cache is emptied
    CachingAllocator.OutOfMemory oom = assertThrows(CachingAllocator.OutOfMemory.class, () -> alloc.allocate(24L << 20, MemoryCategory.ACTIVATION));
    assertEquals(1, dev.frees, "the cached block went back to the device before giving up");
    assertTrue(dev.syncs >= 1, "the stream was synchronised before freeing");
    String msg = oom.getMessage();
    assertTrue(msg.contains("24.0 MiB requested for activation"), msg);
    assertTrue(msg.contains("cap of 64.0 MiB"), msg);
    assertTrue(msg.contains("parameter") && msg.contains("8.0 MiB"), msg);
    assertTrue(msg.contains("smaller micro-batch") && msg.contains("activation checkpointing") && msg.contains("pipeline stages"), msg);
    // within the cap, after freeing the activations, the same request succeeds
    alloc.release(a, MemoryCategory.ACTIVATION);
    alloc.allocate(24L << 20, MemoryCategory.ACTIVATION);
    alloc.release(w, MemoryCategory.PARAMETER);
  }

  @Test void deviceOutOfMemoryRetriesAfterEmptyingTheCache() {
    FakeDevice dev = new FakeDevice(10L << 20);
    CachingAllocator alloc = new CachingAllocator(dev, Long.MAX_VALUE, "fake:0");
    CachingAllocator.Block a = alloc.allocate(6L << 20, MemoryCategory.ACTIVATION);
    alloc.release(a, MemoryCategory.ACTIVATION);
    // 6 MiB cached in the wrong class for an 8 MiB request: the device is full until the cache is freed
    CachingAllocator.Block b = alloc.allocate(8L << 20, MemoryCategory.ACTIVATION);
    assertEquals(1, dev.frees);
    assertEquals(0, alloc.stats().cachedBytes());
    OutOfMemoryCheck.expectOom(alloc, 4L << 20);
    alloc.release(b, MemoryCategory.ACTIVATION);
  }

  static final class OutOfMemoryCheck {
    static void expectOom(CachingAllocator alloc, long bytes) {
      CachingAllocator.OutOfMemory e = assertThrows(CachingAllocator.OutOfMemory.class, () -> alloc.allocate(bytes, MemoryCategory.OPTIMIZER_STATE));
      assertTrue(e.getMessage().contains("the device's 10.0 MiB"), e.getMessage());
    }
  }

  @Test void rejectsNegativeSizesAndCaps() {
    assertThrows(IllegalArgumentException.class, () -> new CachingAllocator(new FakeDevice(1), 0, "fake:0"));
    CachingAllocator alloc = new CachingAllocator(new FakeDevice(1 << 20), Long.MAX_VALUE, "fake:0");
    assertThrows(io.colossal4j.tensor.TensorException.class, () -> alloc.allocate(-1, MemoryCategory.TEMPORARY));
  }

  /** An allocator whose collector releases the blocks listed as garbage, as the GC's cleaner would. */
  private static CachingAllocator withGarbage(FakeDevice dev, java.util.List<CachingAllocator.Block> garbage) {
    CachingAllocator[] self = new CachingAllocator[1];
    self[0] = new CachingAllocator(dev, Long.MAX_VALUE, "fake:0", () -> {
      for (CachingAllocator.Block b : garbage) self[0].release(b, MemoryCategory.ACTIVATION);
      garbage.clear();
    });
    return self[0];
  }

  @Test void garbageIsCollectedBeforeAnOutOfMemory() {
    FakeDevice dev = new FakeDevice(10L << 20);
    java.util.List<CachingAllocator.Block> garbage = new java.util.ArrayList<>();
    CachingAllocator alloc = withGarbage(dev, garbage);
    garbage.add(alloc.allocate(4L << 20, MemoryCategory.ACTIVATION));
    assertEquals(0, alloc.collections());
    // 8 MiB do not fit next to the 4 MiB of garbage: the collector runs, the cache is emptied, the request succeeds
    CachingAllocator.Block b = alloc.allocate(8L << 20, MemoryCategory.ACTIVATION);
    assertEquals(1, alloc.collections());
    assertEquals(8L << 20, alloc.stats().totalCurrent());
    alloc.release(b, MemoryCategory.ACTIVATION);
  }

  @Test void noCollectionWhileRequestsFit() {
    FakeDevice dev = new FakeDevice(10L << 20);
    java.util.List<CachingAllocator.Block> garbage = new java.util.ArrayList<>();
    CachingAllocator alloc = withGarbage(dev, garbage);
    // 9 of 10 MiB in use (garbage included): memory pressure alone never asks for a GC, only a request that fails
    CachingAllocator.Block live = alloc.allocate(5L << 20, MemoryCategory.PARAMETER);
    garbage.add(alloc.allocate(4L << 20, MemoryCategory.ACTIVATION));
    assertEquals(0, alloc.collections());
    assertEquals(9L << 20, alloc.stats().totalCurrent(), "the garbage stays in use until someone releases it");
    alloc.release(live, MemoryCategory.PARAMETER);
  }
}
