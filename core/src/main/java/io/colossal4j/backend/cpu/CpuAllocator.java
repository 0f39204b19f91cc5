package io.colossal4j.backend.cpu;

import io.colossal4j.backend.Backend;
import io.colossal4j.backend.MemoryStats;
import io.colossal4j.tensor.MemoryCategory;
import io.colossal4j.tensor.TensorException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.ref.Cleaner;
import java.util.ArrayDeque;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A caching pool of 64-byte-aligned host blocks, so steady-state training steps reuse the memory of the
 * previous step instead of asking the OS (which would zero fresh pages every time). Blocks of 2 MiB or more are
 * on huge pages where the OS offers them ({@link HostPages}).
 *
 * <p>Ownership: each block belongs to one {@link CpuStorage}; it returns to the pool when that storage is
 * released explicitly or becomes unreachable (a {@link Cleaner} action that holds the block, never the
 * storage). Because unreachability is only noticed by the GC, the pool asks for a collection when the
 * bytes handed out grow past a threshold that adapts to the working set. An allocator that becomes unreachable
 * (its backend dropped without {@link #emptyCache}) frees its cached blocks through a cleaner of its own: the blocks
 * are closed-arena memory the GC would never free. Thread-safe.
 */
final class CpuAllocator {
  private static final long ALIGN = 64;
  private static final long GC_BASE_THRESHOLD = 512L << 20;
  /** One cleaner thread for every allocator and storage of the process. */
  private static final Cleaner CLEANER = Cleaner.create();

  private final Cleaner cleaner = CLEANER;
  private final Map<Long, ArrayDeque<Block>> free = new HashMap<>();
  private final long cacheLimit;
  private final long capBytes;
  private final Map<MemoryCategory, Long> current = new EnumMap<>(MemoryCategory.class);
  private final Map<MemoryCategory, Long> peak = new EnumMap<>(MemoryCategory.class);
  private long cached;
  private long outstanding;
  private long gcThreshold = GC_BASE_THRESHOLD;
  private long requests;
  private long fromOs;

  private record Block(Arena arena, MemorySegment segment, long size) {}

  CpuAllocator(long cacheLimit, long capBytes) {
    this.cacheLimit = cacheLimit;
    this.capBytes = capBytes;
    for (MemoryCategory c : MemoryCategory.values()) { current.put(c, 0L); peak.put(c, 0L); }
    // the action holds the free lists, never the allocator; it runs once no storage of this allocator is left
    // (each storage's cleaner action holds the allocator through its give-back), so no block is in use then
    Map<Long, ArrayDeque<Block>> cache = free;
    CLEANER.register(this, () -> {
      for (ArrayDeque<Block> list : cache.values()) for (Block b : list) b.arena.close();
      cache.clear();
    });
  }

  CpuStorage allocate(Backend backend, long bytes, MemoryCategory category) {
    if (bytes < 0) throw new TensorException("cannot allocate " + bytes + " bytes");
    long size = roundSize(bytes);
    maybeCollect();
    Block block;
    synchronized (this) {
      if (outstanding + size > capBytes)
        throw new TensorException("out of host memory: " + MemoryStats.human(size) + " requested, "
            + MemoryStats.human(outstanding) + " in use, cap " + MemoryStats.human(capBytes) + "\n" + stats().describe());
      ArrayDeque<Block> list = free.get(size);
      block = list == null ? null : list.poll();
      if (block != null) cached -= size;
      else fromOs++;
      requests++;
      outstanding += size;
      long now = current.merge(category, size, Long::sum);
      peak.merge(category, now, Math::max);
    }
    if (block == null) block = newBlock(size);
    Block owned = block;
    AtomicBoolean returned = new AtomicBoolean();
    Runnable giveBack = () -> {
      if (returned.compareAndSet(false, true)) giveBack(owned, category);
    };
    CpuStorage storage = new CpuStorage(backend, bytes, category, owned.segment.asSlice(0, bytes), giveBack);
    cleaner.register(storage, giveBack);
    return storage;
  }

  private static Block newBlock(long size) {
    Arena arena = Arena.ofShared();
    try {
      return new Block(arena, HostPages.allocate(arena, size, ALIGN), size);
    } catch (OutOfMemoryError e) {
      arena.close();
      throw new TensorException("the OS refused " + MemoryStats.human(size) + " of host memory: " + e.getMessage());
    }
  }

  private void giveBack(Block b, MemoryCategory category) {
    Block toFree = null;
    synchronized (this) {
      outstanding -= b.size;
      current.merge(category, -b.size, Long::sum);
      if (cached + b.size <= cacheLimit) {
        free.computeIfAbsent(b.size, k -> new ArrayDeque<>()).push(b);
        cached += b.size;
      } else {
        toFree = b;
      }
      if (outstanding < gcThreshold / 4) gcThreshold = Math.max(GC_BASE_THRESHOLD, gcThreshold / 2);
    }
    if (toFree != null) toFree.arena.close();
  }

  private void maybeCollect() {
    boolean collect;
    synchronized (this) {
      collect = outstanding > gcThreshold;
      if (collect) gcThreshold = outstanding * 2;
    }
    if (collect) System.gc(); // unreachable storages are only noticed by a collection; their cleaners refill the pool
  }

  /** Rounds to a size class: 64 B steps up to 4 KiB, 4 KiB steps up to 1 MiB, then 1/16 of the power of two above. */
  static long roundSize(long bytes) {
    long b = Math.max(bytes, ALIGN);
    if (b <= 4096) return roundUp(b, 64);
    if (b <= (1 << 20)) return roundUp(b, 4096);
    long pow = Long.highestOneBit(b - 1) << 1;
    return roundUp(b, pow / 16);
  }

  private static long roundUp(long v, long m) { return (v + m - 1) / m * m; }

  /** Storages handed out so far, and how many of them needed a new block from the OS (no cached one of their size). */
  synchronized long[] counts() { return new long[] {requests, fromOs}; }

  synchronized MemoryStats stats() {
    return new MemoryStats(current, peak, cached, capBytes);
  }

  /** Frees every cached block (the ones in use stay). */
  synchronized void emptyCache() {
    for (ArrayDeque<Block> list : free.values()) for (Block b : list) b.arena.close();
    free.clear();
    cached = 0;
  }
}
