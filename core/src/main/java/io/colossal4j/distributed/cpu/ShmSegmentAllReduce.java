package io.colossal4j.distributed.cpu;

import io.colossal4j.distributed.CollectiveException;
import io.colossal4j.distributed.Reduction;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;

/**
 * All-reduce through shared memory in a few large segments, for large tensors in groups of more than two
 * members on one host (two members, and small tensors, take the pipelined {@link ShmAllReduce}: its
 * combination reads every member's slice, so its work per member grows with the group, and its per-slice
 * handshakes need every member on a core at once; here work per member is constant and there are two
 * signals per segment, which suits ranks that outnumber the cores). Each member owns a slot
 * of {@code slotBytes} in one mapped file; the tensor is processed in segments of at most one slot:
 * <ol>
 *   <li>member r copies every chunk but its own of the segment into its slot;</li>
 *   <li>signal A (zero-byte messages to every member: all slots are filled);</li>
 *   <li>member r reduces chunk r: its own data combined with chunk r of every other slot, in rank order,
 *   written to its tensor and (in the same pass as the last combination) to chunk r of its own slot;</li>
 *   <li>signal B (all reductions are done);</li>
 *   <li>member r copies chunk j of slot j, for every j != r, into its tensor.</li>
 * </ol>
 * Nothing is overwritten while another member may read it: step 1 of the next segment writes chunks j != r
 * of slot r, read by others only in step 3 (before B); chunk r of slot r, read in step 5, is rewritten only
 * after the next A (chunks sit at fixed places in a slot, see {@link #segment}). Each member moves about 3
 * times its tensor's bytes through memory, against 4 or more for a ring over loopback TCP (two copies per
 * hop through the kernel). Used by one thread at a time (the group runs its operations in order).
 */
final class ShmSegmentAllReduce implements AutoCloseable {
  /** Bytes per member's slot in production: large enough that the two signals per segment cost little. */
  static final long SLOT = 32L << 20;

  private final long slotBytes;
  private final String name;
  private final int n;
  private final int r;
  private MemorySegment shared;
  private ShmFiles.Mapped file;
  private boolean unlinked;

  ShmSegmentAllReduce(String name, int n, int r, long slotBytes) {
    this.slotBytes = slotBytes;
    this.name = name;
    this.n = n;
    this.r = r;
  }

  void allReduce(OpRun run, Algorithms.Buf x, long numel, Reduction op) {
    map(run);
    long chunkCap = slotBytes / x.es() / n, perSegment = chunkCap * n;
    int segments = (int) ((numel + perSegment - 1) / perSegment);
    try {
      for (int k = 0; k < segments; k++) {
        long base = k * perSegment, len = Math.min(perSegment, numel - base);
        segment(run, new Algorithms.Buf(x.seg(), x.at(base), x.es()), len, chunkCap * x.es(), op, 2 * k);
      }
    } catch (RuntimeException e) {
      if (!unlinked && file != null) unlink();   // the job is failing: leave no file behind, even if a member never arrived
      throw e;
    }
  }

  /**
   * One segment of len elements. Chunk j of every segment lives at the same place, {@code j * chunkBytes}
   * into a slot, whatever the segment's length, so a shorter last segment cannot overwrite a chunk that a
   * member is still copying out of the previous one.
   */
  private void segment(OpRun run, Algorithms.Buf x, long len, long chunkBytes, Reduction op, int step) {
    int es = x.es();
    for (int j = 0; j < n; j++) {
      if (j == r) continue;
      long c0 = Algorithms.chunkStart(len, n, j), c1 = Algorithms.chunkStart(len, n, j + 1);
      MemorySegment.copy(x.seg(), x.at(c0), shared, slot(r) + j * chunkBytes, (c1 - c0) * es);
    }
    signal(run, step);
    if (!unlinked) unlink();
    long c0 = Algorithms.chunkStart(len, n, r), c1 = Algorithms.chunkStart(len, n, r + 1);
    int last = r == n - 1 ? n - 2 : n - 1;
    for (int j = 0; j < n; j++) {
      if (j == r) continue;
      if (j != last) Elementwise.accumulate(op, run.dtype, x.seg(), x.at(c0), shared, slot(j) + r * chunkBytes, c1 - c0);
      else Elementwise.accumulateAndCopy(op, run.dtype, x.seg(), x.at(c0), shared, slot(j) + r * chunkBytes, shared, slot(r) + r * chunkBytes, c1 - c0);
    }
    signal(run, step + 1);
    for (int j = 0; j < n; j++) {
      if (j == r) continue;
      long j0 = Algorithms.chunkStart(len, n, j), j1 = Algorithms.chunkStart(len, n, j + 1);
      MemorySegment.copy(shared, slot(j) + j * chunkBytes, x.seg(), x.at(j0), (j1 - j0) * es);
    }
  }

  private long slot(int j) { return j * slotBytes; }

  private static void signal(OpRun run, int step) {
    int n = run.group.size(), r = run.group.rank();
    for (int j = 0; j < n; j++) if (j != r) run.sendSignal(j, step);
    for (int j = 0; j < n; j++) if (j != r) run.recvSignal(j, step);
  }

  /** Maps the group's file (every member creates or opens it with the same size). */
  private void map(OpRun run) {
    if (shared != null) return;
    Path path = ShmFiles.path(name + "-seg");
    try {
      file = ShmFiles.map(path, n * slotBytes);
    } catch (IOException e) {
      throw new CollectiveException(run.where() + ": cannot map shared memory " + path + ": " + e.getMessage(), e);
    }
    shared = file.memory();
  }

  /** After the first signal every member has mapped the file, so its name can go (the mappings stay). */
  private void unlink() {
    unlinked = true;
    ShmFiles.release(file);
  }

  @Override public void close() {
    if (!unlinked && file != null) unlink();
    // The mapping is not closed: the executor thread may still be inside a copy when the group shuts down,
    // and unmapping under it would crash the JVM. The mapping goes with the process.
  }
}
