package io.colossal4j.backend.cuda;

import io.colossal4j.backend.MemoryStats;
import io.colossal4j.tensor.MemoryCategory;
import io.colossal4j.tensor.TensorException;
import java.util.ArrayDeque;
import java.util.EnumMap;
import java.util.Map;
import java.util.TreeMap;

/**
 * A caching device allocator, stream-ordered: all work of a backend runs on one stream, so a block freed
 * after the kernels that use it were queued can be handed to the next allocation at once; any later
 * kernel on that stream runs after those uses. Blocks go back to the device only after a stream
 * synchronisation (when the cache is emptied).
 *
 * <p>Size classes: 512-byte steps up to 1 MiB, then 1/16 of the power of two above (at most 6.25% slack);
 * a request takes a cached block of its class, or of the next classes up to twice its size (small blocks) or
 * a quarter above it (large ones). Statistics per
 * {@link MemoryCategory} (current and peak bytes in use) and the cached total. An optional cap limits the
 * bytes held from the device (in use + cached), so a large GPU can behave like a smaller one. When a
 * request does not fit, the cache is emptied and the request retried before an {@link OutOfMemory} is thrown.
 *
 * <p>Release is deterministic: tensors of a training step are released by the step (its ledger and autograd's
 * holds, see {@code Backend.openStep}), others by their owner or, if dropped unreleased, by the GC's cleaner.
 * The allocator never asks for a collection in the normal path; only when a request cannot be met even after
 * the cache was emptied does it run the {@code collector} (System.gc for a real device) once, wait for the
 * releases it causes and retry, before declaring an out-of-memory. {@link #collections} counts those, so
 * a test can assert that training steps needed none.
 *
 * <p>Side-stream jobs (see {@code CudaBackend.sideBegin}) break the one-stream ordering for the blocks they use:
 * such a block comes back tagged with its last job's number, and whoever takes it next first has the main stream
 * wait for that job ({@code sideWait}), so the block is never overwritten while the job may still read it.
 *
 * <p>Thread-safe (one lock); a storage may be released from any thread, including the GC's cleaner.
 */
final class CachingAllocator {
  static final long SMALL_STEP = 512;
  static final long SMALL_LIMIT = 1L << 20;

  /** The device (or the cap) cannot satisfy a request even after the cache was emptied. */
  static final class OutOfMemory extends TensorException {
    OutOfMemory(String message) { super(message); }
  }

  /** One device block handed out: its address, size class, and the bytes asked for (at most the size). */
  record Block(long pointer, long size, long requested) {}

  private final DeviceMemory memory;
  private final long capBytes;
  private final String deviceName;
  private final TreeMap<Long, ArrayDeque<Long>> free = new TreeMap<>();
  private final Map<MemoryCategory, Long> current = new EnumMap<>(MemoryCategory.class);
  private final Map<MemoryCategory, Long> peak = new EnumMap<>(MemoryCategory.class);
  private long cached;
  private long inUse;
  private long peakInUse;
  private long requestedInUse;
  private long peakRequested;
  private long deviceAllocations;
  private final Runnable collector;
  private final java.util.function.LongConsumer sideWait;
  /** Cached blocks (by address) that a side-stream job may still use, with that job's number. */
  private final java.util.HashMap<Long, Long> sideTags = new java.util.HashMap<>();
  private long releases;
  private long collections;

  /** An allocator without a collector (tests that release explicitly). */
  CachingAllocator(DeviceMemory memory, long capBytes, String deviceName) { this(memory, capBytes, deviceName, () -> {}); }

  CachingAllocator(DeviceMemory memory, long capBytes, String deviceName, Runnable collector) { this(memory, capBytes, deviceName, collector, job -> {}); }

  /**
   * {@code collector}: asked for releases when nothing fits; {@code sideWait}: makes the main stream wait for side
   * job n before a block that job used is handed out again.
   */
  CachingAllocator(DeviceMemory memory, long capBytes, String deviceName, Runnable collector, java.util.function.LongConsumer sideWait) {
    if (capBytes <= 0) throw new IllegalArgumentException("memory cap must be > 0 bytes, got " + capBytes);
    this.memory = memory;
    this.capBytes = capBytes;
    this.deviceName = deviceName;
    this.collector = collector;
    this.sideWait = sideWait;
    for (MemoryCategory c : MemoryCategory.values()) { current.put(c, 0L); peak.put(c, 0L); }
  }

  static long sizeClass(long bytes) {
    long b = Math.max(bytes, 1);
    if (b <= SMALL_LIMIT) return roundUp(b, SMALL_STEP);
    long pow = Long.highestOneBit(b - 1) << 1;
    return roundUp(b, pow / 16);
  }

  private static long roundUp(long v, long m) { return (v + m - 1) / m * m; }

  /**
   * A block of at least {@code bytes}, charged to {@code category}. Not synchronised as a whole: a collection
   * runs outside the lock, so that the cleaner's releases can come in while this thread waits for them.
   */
  Block allocate(long bytes, MemoryCategory category) {
    if (bytes < 0) throw new TensorException("cannot allocate " + bytes + " bytes on " + deviceName);
    Block b = tryAllocate(bytes, category);
    if (b == null) {
      collect();
      b = tryAllocate(bytes, category);
      if (b == null) throw new OutOfMemory(outOfMemoryReport(bytes, category));
    }
    return b;
  }

  private synchronized long releases() { return releases; }

  /** Runs the collector and waits (at most about 200 ms) until its releases stop arriving. */
  private void collect() {
    collector.run();
    long seen = releases();
    for (int i = 0; i < 100; i++) {
      try {
        Thread.sleep(2);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        break;
      }
      long now = releases();
      if (now == seen && i >= 2) break;
      seen = now;
    }
    synchronized (this) {
      collections++;
    }
  }

  /** How many collections the allocator has asked for (for tests and reports). */
  synchronized long collections() { return collections; }

  /** A block, or null when neither the cache nor the device (within the cap) can provide one. */
  private synchronized Block tryAllocate(long bytes, MemoryCategory category) {
    long size = sizeClass(bytes);
    Block b = takeCached(size, bytes);
    if (b == null) b = fromDevice(size, bytes);
    if (b == null) return null;
    inUse += b.size;
    peakInUse = Math.max(peakInUse, inUse);
    requestedInUse += bytes;
    peakRequested = Math.max(peakRequested, requestedInUse);
    long now = current.merge(category, b.size, Long::sum);
    peak.merge(category, now, Math::max);
    return b;
  }

  /**
   * The largest cached class a request of class {@code size} may take: up to twice the size for small blocks,
   * within a quarter above it for large ones (a large request served by a much larger block would hold the
   * difference idle while in use; a new device block is the better trade).
   */
  static long reuseLimit(long size) { return size <= SMALL_LIMIT ? 2 * size : size + size / 4; }

  private Block takeCached(long size, long requested) {
    Map.Entry<Long, ArrayDeque<Long>> e = free.ceilingEntry(size);
    while (e != null && e.getKey() <= reuseLimit(size)) {
      Long p = e.getValue().poll();
      if (p != null) {
        if (e.getValue().isEmpty()) free.remove(e.getKey());
        cached -= e.getKey();
        Long job = sideTags.isEmpty() ? null : sideTags.remove(p);
        if (job != null) sideWait.accept(job);
        return new Block(p, e.getKey(), requested);
      }
      free.remove(e.getKey());
      e = free.ceilingEntry(size);
    }
    return null;
  }

  private Block fromDevice(long size, long requested) {
    if (inUse + cached + size > capBytes) emptyCache();
    long p = inUse + size <= capBytes ? memory.allocate(size) : 0;
    if (p == 0 && cached > 0) {
      emptyCache();
      p = inUse + size <= capBytes ? memory.allocate(size) : 0;
    }
    if (p == 0) return null;
    deviceAllocations++;
    return new Block(p, size, requested);
  }

  /** Returns a block to the cache; the caller's uses of it are already queued on the stream. */
  void release(Block b, MemoryCategory category) { release(b, category, 0); }

  /** {@link #release(Block, MemoryCategory)} of a block side-stream job {@code sideJob} may still use (0: none). */
  synchronized void release(Block b, MemoryCategory category, long sideJob) {
    if (sideJob > 0) sideTags.put(b.pointer, sideJob);
    releases++;
    inUse -= b.size;
    requestedInUse -= b.requested;
    current.merge(category, -b.size, Long::sum);
    free.computeIfAbsent(b.size, k -> new ArrayDeque<>()).push(b.pointer);
    cached += b.size;
  }

  /** Gives every cached block back to the device, after the stream has finished with them. */
  synchronized void emptyCache() {
    if (free.isEmpty()) return;
    memory.synchronize();   // the side stream's jobs too
    for (Map.Entry<Long, ArrayDeque<Long>> e : free.entrySet()) for (long p : e.getValue()) memory.free(p);
    free.clear();
    sideTags.clear();
    cached = 0;
  }

  synchronized MemoryStats stats() { return new MemoryStats(current, peak, cached, capBytes); }

  synchronized long deviceAllocations() { return deviceAllocations; }

  /** Zeroes the peaks (to the current values), e.g. between a warm-up step and a measured one. */
  synchronized void resetPeaks() {
    peak.putAll(current);
    peakInUse = inUse;
    peakRequested = requestedInUse;
  }

  /** The most bytes in use at once (all categories together, size classes included) since the last reset. */
  synchronized long peakInUse() { return peakInUse; }

  /** The most bytes requested at once (without the size classes' rounding) since the last reset: PyTorch's measure. */
  synchronized long peakRequested() { return peakRequested; }

  synchronized String outOfMemoryReport(long requested, MemoryCategory category) {
    MemoryStats s = new MemoryStats(current, peak, cached, capBytes);
    String limit = capBytes == Long.MAX_VALUE
        ? "the device's " + MemoryStats.human(memory.totalBytes())
        : "the cap of " + MemoryStats.human(capBytes) + " (device " + MemoryStats.human(memory.totalBytes()) + ")";
    return "CUDA out of memory on " + deviceName + ": " + MemoryStats.human(requested) + " requested for "
        + category.name().toLowerCase() + ", " + MemoryStats.human(inUse) + " in use within " + limit
        + " (cache emptied and retried).\nHeld per category:\n" + s.describe() + "What would help: " + advice();
  }

  /** Advice from what holds the most memory. */
  private String advice() {
    MemoryCategory top = MemoryCategory.ACTIVATION;
    for (MemoryCategory c : MemoryCategory.values()) if (current.get(c) > current.get(top)) top = c;
    return switch (top) {
      case ACTIVATION, TEMPORARY -> "activations dominate: a smaller micro-batch (more gradient accumulation steps), "
          + "activation checkpointing, or more pipeline stages.";
      case PARAMETER -> "parameters dominate: tensor or pipeline parallelism, ZeRO stage 3 (shard parameters), or Gemini offload.";
      case GRADIENT -> "gradients dominate: ZeRO stage 2 (shard gradients), or more pipeline stages.";
      case OPTIMIZER_STATE -> "optimizer state dominates: ZeRO stage 1 (shard optimizer state) or Gemini/CPU offload of the optimizer.";
    };
  }
}
