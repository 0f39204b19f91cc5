package io.colossal4j.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.tensor.MemoryCategory;
import io.colossal4j.tensor.TensorException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Reuse of freed blocks inside one step of the {@link StepArena}: which block a request gets (best fit, the most
 * recently freed among equals, the top of the chunk given back to the bump pointer), that live blocks never
 * overlap under a long random sequence checked against a reference model of the live set, and what a reset does.
 */
class StepArenaReuseTest {
  private final CpuBackend cpu = CpuBackend.create(1);
  private final StepArena arena = new StepArena();

  @AfterEach void close() { cpu.close(); }

  private CpuStorage alloc(long bytes) { return arena.allocate(cpu, bytes, MemoryCategory.ACTIVATION); }

  private static long addr(CpuStorage s) { return s.segment().address(); }

  @Test void aFreedBlockIsHandedOutAgainWithinTheStep() {
    CpuStorage a = alloc(4096);
    alloc(64);   // keeps a off the top of the chunk
    long at = addr(a);
    a.release();
    CpuStorage b = alloc(4000);   // rounds to 4032 B: fits a's 4096 B block
    assertEquals(at, addr(b), "the freed block is reused before the step ends");
    assertEquals(4032, arena.reusedBytes());
    CpuStorage c = alloc(64);      // the 64 B left of a's block
    assertEquals(at + 4032, addr(c));
    assertEquals(0, arena.freeBlocks());
  }

  @Test void amongBlocksThatFitTheSmallestThenTheMostRecentlyFreedIsTaken() {
    // 64 B guards between the blocks keep them from merging when freed
    CpuStorage big = alloc(8192);
    alloc(64);
    CpuStorage x = alloc(1024);
    alloc(64);
    CpuStorage y = alloc(1024);
    alloc(64);
    long bigAt = addr(big), yAt = addr(y);
    big.release();
    x.release();
    y.release();   // x and y are the same size, y freed last
    assertEquals(yAt, addr(alloc(1024)), "the most recently freed of the best-fitting blocks");
    assertNotEquals(bigAt, addr(alloc(1024)), "a 1 KiB request takes the remaining 1 KiB block, not the 8 KiB one");
    assertEquals(bigAt, addr(alloc(2048)), "only the 8 KiB block fits 2 KiB");
  }

  @Test void freeingTheTopLowersTheBumpPointerAndNeighboursMerge() {
    CpuStorage a = alloc(1024), b = alloc(1024), c = alloc(1024);
    long aAt = addr(a);
    b.release();
    a.release();              // merges with b: one 2 KiB block
    assertEquals(1, arena.freeBlocks());
    assertEquals(aAt, addr(alloc(2048)), "a and b merged into one block that fits 2 KiB");
    c.release();              // the top: the bump pointer goes back, no free block remains
    assertEquals(0, arena.freeBlocks());
    assertEquals(aAt + 2048, addr(alloc(4096)), "fresh memory starts where c was");
  }

  @Test void aReleaseFromAnotherThreadIsNotReused() throws Exception {
    CpuStorage a = alloc(4096);
    alloc(64);
    long at = addr(a);
    Thread t = new Thread(a::release);
    t.start();
    t.join();
    assertTrue(a.isReleased());
    assertEquals(0, arena.freeBlocks(), "the free list is only touched by the step's thread");
    assertNotEquals(at, addr(alloc(4096)), "the block stays unused until the step ends");
  }

  /**
   * A random mix of allocations (64 B to 3 MiB, some larger than the rest of a chunk) and releases in random
   * order, several steps long. The reference model is the live set itself: after every allocation the new block
   * must not overlap any live block (checked on an address-ordered map), every block must still hold the bytes
   * written into it when it was allocated (a lost overlap would show as a clobbered stamp), and the arena's peak
   * must equal the largest rounded live total the model saw.
   */
  @Test void liveBlocksNeverOverlapUnderARandomSequence() {
    Random r = new Random(42);
    for (int step = 0; step < 3; step++) {
      TreeMap<Long, Long> live = new TreeMap<>();   // address -> rounded size
      List<CpuStorage> held = new ArrayList<>();
      arena.resetPeak();
      long liveBytes = 0, maxLive = 0;
      for (int op = 0; op < 4000; op++) {
        if (held.isEmpty() || r.nextInt(100) < 55) {
          long bytes = r.nextInt(10) == 0 ? 1 + r.nextInt(3 << 20) : 1 + r.nextInt(20_000);
          CpuStorage s = alloc(bytes);
          long at = addr(s), size = (Math.max(bytes, 1) + 63) / 64 * 64;
          assertEquals(0, at % 64, "64-byte aligned");
          Map.Entry<Long, Long> below = live.floorEntry(at), above = live.ceilingEntry(at);
          assertTrue(below == null || below.getKey() + below.getValue() <= at, "overlaps the block below");
          assertTrue(above == null || at + size <= above.getKey(), "overlaps the block above");
          live.put(at, size);
          stamp(s, op);
          held.add(s);
          liveBytes += size;
          maxLive = Math.max(maxLive, liveBytes);
        } else {
          CpuStorage s = held.remove(r.nextInt(held.size()));
          long at = addr(s);
          checkStamp(s);
          liveBytes -= live.remove(at);
          s.release();
        }
      }
      for (CpuStorage s : held) checkStamp(s);
      assertEquals(maxLive, arena.peakBytes(), "peak = the most bytes live at once");
      assertTrue(arena.reusedBytes() > 0);
      arena.reset();
      for (CpuStorage s : held) assertTrue(s.isReleased(), "reset releases what is still handed out");
    }
  }

  private void stamp(CpuStorage s, int id) {
    MemorySegment m = s.segment();
    m.set(ValueLayout.JAVA_BYTE, 0, (byte) id);
    m.set(ValueLayout.JAVA_BYTE, m.byteSize() - 1, (byte) (id >> 8));
    m.set(ValueLayout.JAVA_BYTE, m.byteSize() / 2, (byte) (id >> 4));
    ids.put(s, id);
  }

  private final Map<CpuStorage, Integer> ids = new java.util.IdentityHashMap<>();

  private void checkStamp(CpuStorage s) {
    int id = ids.get(s);
    MemorySegment m = s.segment();
    assertEquals((byte) id, m.get(ValueLayout.JAVA_BYTE, 0));
    assertEquals((byte) (id >> 8), m.get(ValueLayout.JAVA_BYTE, m.byteSize() - 1));
    assertEquals((byte) (id >> 4), m.get(ValueLayout.JAVA_BYTE, m.byteSize() / 2));
  }

  @Test void resetReleasesEverythingAndStartsOverFromTheFirstChunk() {
    CpuStorage first = alloc(100);
    long base = addr(first);
    CpuStorage early = alloc(70 << 20);   // larger than a chunk: a chunk of its own
    CpuStorage kept = alloc(4096);
    early.release();
    long reserved = arena.reservedBytes();
    arena.reset();
    assertTrue(first.isReleased() && kept.isReleased() && early.isReleased());
    assertThrows(TensorException.class, kept::segment, "a storage that outlives its step fails on use");
    assertEquals(0, arena.freeBlocks());
    assertEquals(base, addr(alloc(100)), "the next step starts at the first chunk's start");
    alloc(70 << 20);
    alloc(4096);
    assertEquals(reserved, arena.reservedBytes(), "the same step again reserves nothing new");
    first.release();   // released twice (early and by the reset): nothing changes
    assertEquals(reserved, arena.reservedBytes());
  }
}
