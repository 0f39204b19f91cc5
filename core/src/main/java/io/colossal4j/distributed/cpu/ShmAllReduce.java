package io.colossal4j.distributed.cpu;

import io.colossal4j.distributed.Reduction;
import io.colossal4j.tensor.DType;
import java.io.IOException;
import java.lang.foreign.MemorySegment;

/**
 * All-reduce through shared memory for groups whose members all run on one host, for every size: the
 * tensor is cut into slices of at most {@code sliceBytes} (one slice when it is smaller, or empty), each
 * numbered by a counter that advances identically on every member. A member
 * <ol>
 *   <li>publishes a slice: once every member has consumed the slice that last used the slot (number - slots),
 *   copies its tensor's slice into its slot, writes the slot's header (operation number, numel, dtype and
 *   reduction, slice index) and publishes the slice number;</li>
 *   <li>reduces a slice: waits until every member has published it, checks their headers equal its own (a
 *   member that called another operation, size, dtype or reduction aborts the job, named, rather than
 *   mixing data), writes op(slot 0, ..., slot n-1), combined in member order, into its tensor's slice
 *   (divided by n for AVG), and marks the slice consumed.</li>
 * </ol>
 * Before reducing slice m it publishes m, then, without waiting, as many later slices as free slots allow
 * (up to {@code lead} ahead): when a peer is descheduled, a member keeps working instead of stalling at
 * every slice. Every member computes the same combination of the same bits in the same order, so all end
 * bit-identical. With small slots the ring stays in cache: each member reads its tensor once and writes it
 * once from memory, and the copies through the slots are cache traffic. A small tensor is a single slice:
 * one publication and one wait, with no message and no thread hand-off (the latency path). Used by one
 * thread at a time (the group runs its operations in order).
 */
final class ShmAllReduce implements AutoCloseable {
  /**
   * Bytes per slice in production: a slice of the tensor and the two slots it meets fit in a core's 1 MiB
   * L2. (64 MiB between 2 ranks, in-JVM, load 7.5, three rounds: 7.0 to 7.9 ms of CPU per rank with
   * 256 KiB, 8.0 to 9.2 with 128 KiB, 7.9 to 8.8 with 512 KiB.)
   */
  static final long SLICE = 256L << 10;

  /**
   * Slots per member: 2 MiB of 256 KiB slices, so that every member's ring stays in cache; a member
   * publishes up to this many slices ahead. (On the loaded 2-core VM, 64 MiB between 2 ranks, 8 slots
   * with full lead cost 7.5 to 8 ms of CPU per rank against 9.6 to 10 ms when publishing only one ahead;
   * 16 and 32 slots were no better.)
   */
  static final int SLOTS = 8;

  private final String name;
  private final int n;
  private final int r;
  private final int slots;
  private final long sliceBytes;
  private ShmRegion region;
  /** Slices this member has published, and reduced, so far (over all operations). */
  private long published, reduced;

  ShmAllReduce(String name, int n, int r, int slots, long sliceBytes) {
    this.name = name;
    this.n = n;
    this.r = r;
    this.slots = slots;
    this.sliceBytes = sliceBytes;
  }

  void allReduce(OpRun run, Algorithms.Buf x, long numel, Reduction op) {
    if (region == null) {
      try {
        region = ShmRegion.map(name, n, slots, sliceBytes);
      } catch (IOException e) {
        throw ShmRegion.mapFailure(run, name, e);
      }
    }
    long per = sliceBytes / x.es(), slices = Math.max(1, (numel + per - 1) / per), base = reduced;
    long[] header = {run.seq, numel, run.dtype.ordinal() * 16L + op.ordinal(), 0};
    try {
      for (long k = 0; k < slices; k++) {
        while (published < base + k + 1) publish(run, x, numel, per, base, header, true);
        while (published < base + slices && published < base + k + slots && publish(run, x, numel, per, base, header, false)) {
          // publish ahead while slots are free
        }
        reduce(run, x, numel, per, base, k, op, header);
      }
    } catch (RuntimeException e) {
      region.unlink();   // the job is failing: leave no file behind, even if a member never arrived
      throw e;
    }
  }

  /** Publishes the next slice (number published + 1, index published - base of this operation); returns false if its slot is busy and !wait. */
  private boolean publish(OpRun run, Algorithms.Buf x, long numel, long per, long base, long[] header, boolean wait) {
    long s = published + 1, k = s - base - 1, first = k * per, count = Math.min(per, numel - first);
    if (s > slots) {
      if (!wait && !region.allConsumed(s - slots, r)) return false;
      for (int j = 0; j < n; j++) if (j != r) region.awaitConsumed(j, s - slots, r, run);
    }
    int slot = (int) (s % slots);
    MemorySegment.copy(x.seg(), x.at(first), region.memory(), region.slot(r, slot), count * x.es());
    header[3] = k;
    region.publish(r, slot, s, header, run);
    published = s;
    return true;
  }

  private void reduce(OpRun run, Algorithms.Buf x, long numel, long per, long base, long k, Reduction op, long[] header) {
    long s = base + k + 1, first = k * per, count = Math.min(per, numel - first);
    int slot = (int) (s % slots);
    MemorySegment mem = region.memory();
    header[3] = k;
    for (int j = 0; j < n; j++) {
      if (j == r) continue;
      region.awaitPublished(j, s, r, run);
      long[] theirs = region.readHeader(j, slot);
      if (!java.util.Arrays.equals(theirs, header)) throw run.mismatch(j, describe(theirs));
    }
    if (s == 1) region.unlink();   // every member has published, so has mapped the file
    Elementwise.combine(op, run.dtype, mem, region.slot(0, slot), mem, region.slot(1, slot), x.seg(), x.at(first), count);
    for (int j = 2; j < n; j++) Elementwise.accumulate(op, run.dtype, x.seg(), x.at(first), mem, region.slot(j, slot), count);
    if (op == Reduction.AVG) Elementwise.divide(run.dtype, x.seg(), x.at(first), count, n);
    region.consume(r, s, run);
    reduced = s;
  }

  /** A peer's header in words: "all_reduce #3 (SUM) of 1000 f32". */
  private static String describe(long[] h) {
    DType[] dts = DType.values();
    Reduction[] ops = Reduction.values();
    int dt = (int) (h[2] / 16), red = (int) (h[2] % 16);
    String dtype = dt >= 0 && dt < dts.length ? OpRun.name(dts[dt]) : "?";
    String reduction = red >= 0 && red < ops.length ? ops[red].name() : "?";
    return Op.ALL_REDUCE.text + " #" + h[0] + " (" + reduction + ") of " + h[1] + " " + dtype;
  }

  @Override public void close() {
    if (region != null) region.unlink();
  }
}
