package io.colossal4j.distributed.cpu;

import io.colossal4j.distributed.Reduction;
import io.colossal4j.tensor.DType;
import java.io.IOException;
import java.lang.foreign.MemorySegment;

/**
 * All-reduce through shared memory for groups whose members all run on one host, for every size: the
 * tensor is cut into slices of at most {@code sliceBytes} (one slice when it is smaller, or empty), each
 * numbered by a counter that advances identically on every member. A tensor of one slice is combined
 * whole by every member (the latency path: one publication, one wait, no message, no thread hand-off):
 * <ol>
 *   <li>publish: once every member has consumed the slice that last used the slot (number - slots), copy
 *   the slice into this member's slot, write the slot's header (operation number, numel, dtype and
 *   reduction, slice index) and publish the slice number;</li>
 *   <li>wait until every member has published it, check their headers equal this member's (a member that
 *   called another operation, size, dtype or reduction aborts the job, named, rather than mixing data),
 *   write op(slot 0, ..., slot n-1), in member order, into the tensor and mark the slice consumed.</li>
 * </ol>
 * A larger tensor is reduce-scattered and all-gathered slice by slice ({@link #reduceChunk}): each slice
 * is cut into n chunks; a member publishes only the chunks the others reduce, reduces its own chunk (its
 * tensor's chunk combined with the others' published copies, straight from the mapping) into its slot and
 * its tensor, and copies the others' reduced chunks into its tensor. Per member the tensor is read once
 * and written once from memory, and (n-1)/n of it crosses each way through the slots, which stay in cache;
 * the whole-slice scheme moved all of it in and combined every chunk on every member (measured in
 * docs/benchmarks/comm.md). Either way every member ends with the same bits (a chunk is combined once,
 * in member order, and copied), and a member publishes up to {@code slots} slices ahead while its peers
 * lag. Tensors in the group's shared buffers take {@link #allReduceShared} instead: reduced in place in
 * every member's copy, no slots. Used by one thread at a time (the group runs its operations in order).
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

  /** The reduction of a split slice runs in blocks of this many bytes, so that the copy of a block from the slot to the tensor reads L1. */
  private static final long BLOCK_BYTES = 16 << 10;

  private final String name;
  private final int n;
  private final int r;
  private final int slots;
  private final long sliceBytes;
  /** The kind word of a header of an all-reduce of shared buffers has this bit set (the others: dtype * 16 + reduction). */
  private static final long SHARED = 1L << 12;

  private ShmRegion region;
  /** Slices this member has published, and finished (consumed), so far (over all operations). */
  private long published, done;
  /** Pieces of shared-buffer all-reduces handed out so far (over all operations): the same on every member between operations. */
  private long pieces;

  ShmAllReduce(String name, int n, int r, int slots, long sliceBytes) {
    this.name = name;
    this.n = n;
    this.r = r;
    this.slots = slots;
    this.sliceBytes = sliceBytes;
  }

  /** One operation's geometry: its tensor, slice length in elements, slice count and first slice number - 1. */
  private record Plan(OpRun run, Algorithms.Buf x, long numel, Reduction op, long per, long slices, long base, long[] header) {
    boolean split() { return slices > 1; }

    long first(long k) { return k * per; }

    long count(long k) { return Math.min(per, numel - k * per); }

    /** Start of chunk c (0..n) of a slice of count elements, in elements from the slice's start (multiples of 16 elements: whole 64-byte vectors of f32). */
    static long chunk(long count, int n, int c) { return Math.min(count, c * ((((count + n - 1) / n) + 15) & ~15L)); }
  }

  void allReduce(OpRun run, Algorithms.Buf x, long numel, Reduction op) {
    map(run);
    long per = sliceBytes / x.es();
    Plan p = new Plan(run, x, numel, op, per, Math.max(1, (numel + per - 1) / per), done,
        new long[] {run.seq, numel, run.dtype.ordinal() * 16L + op.ordinal(), 0});
    try {
      for (long k = 0; k < p.slices; k++) {
        while (published < p.base + k + 1) publish(p, true);
        while (published < p.base + p.slices && published < p.base + k + slots && publish(p, false)) {
          // publish ahead while slots are free
        }
        if (!p.split()) {
          combineAll(p, k);
          continue;
        }
        reduceChunk(p, k);
        if (k > 0) gather(p, k - 1);   // one slice behind, so that the peers have usually reduced it by now
      }
      if (p.split()) gather(p, p.slices - 1);
    } catch (RuntimeException e) {
      region.unlink();   // the job is failing: leave no file behind, even if a member never arrived
      throw e;
    }
  }

  private void map(OpRun run) {
    if (region != null) return;
    try {
      region = ShmRegion.map(name, n, slots, sliceBytes);
    } catch (IOException e) {
      throw ShmRegion.mapFailure(run, name, e);
    }
  }

  /**
   * All-reduce of {@code numel} elements at {@code x} in every member's copy of a shared buffer, in place:
   * one slice number for the whole operation, whose header (operation number, numel, kind with the
   * {@link #SHARED} bit, buffer index and offset) every member publishes once its own copy holds its input,
   * so that a member that called another collective, size, buffer or offset fails the job, named. Then the
   * tensor is cut into pieces of {@code sliceBytes}, handed out one at a time to whichever member asks
   * ({@link ShmRegion#claim}); the member that takes a piece combines the members' copies of it in member
   * order (the same element operations as {@link #reduceChunk}, so results are bit-identical to the copying
   * path's) and writes the result into every copy. Per piece that reads and writes each copy once: with 2
   * members, the traffic of two copies of the tensor in all, one per member when both run. A member that the scheduler keeps off its core
   * costs no waiting beyond the piece it holds: the running members take the rest. Every member returns once
   * every piece is done (its copy is then final and no peer touches it any more).
   */
  void allReduceShared(OpRun run, ShmBuffers.Placed x, long numel, Reduction op) {
    map(run);
    int es = run.dtype.byteSize();
    long per = sliceBytes / es, count = (numel + per - 1) / per, end = pieces + count, s = done + 1;
    long[] header = {run.seq, numel, SHARED | run.dtype.ordinal() * 16L + op.ordinal(), ((long) x.buffer().index() << 40) | x.offset()};
    int slot = (int) (s % slots);
    try {
      if (s > slots) for (int j = 0; j < n; j++) if (j != r) region.awaitConsumed(j, s - slots, r, run);
      region.publish(r, slot, s, header, run);
      published = s;
      awaitHeaders(run, s, slot, header);
      long mine = 0;
      for (long c; (c = region.claim(end)) >= 0; mine++) {
        long first = (c - pieces) * per;
        reducePiece(run.dtype, op, x, first, Math.min(per, numel - first));
      }
      region.finish(mine, end, r, run);
      region.awaitFinished(end, r, run);
      pieces = end;
      region.consume(r, s, run);
      done = s;
    } catch (RuntimeException e) {
      region.unlink();
      throw e;
    }
  }

  /**
   * Elements [first, first + count) of the tensor in every copy = op(copy 0, ..., copy n-1): for 2 members in
   * one pass; else combined into copy 0 in L1-sized blocks, then copied from there into the others.
   */
  private void reducePiece(DType dt, Reduction op, ShmBuffers.Placed x, long first, long count) {
    ShmBuffers.Buffer b = x.buffer();
    MemorySegment mem = b.mapping();
    int es = dt.byteSize();
    long block = BLOCK_BYTES / es;
    if (n == 2) {   // one pass writing both copies (measured 30 to 40 % less time than combine, then copy)
      Elementwise.combineIntoBoth(op, dt, mem, b.at(0, x.offset() + first, es), mem, b.at(1, x.offset() + first, es), count);
      return;
    }
    for (long i = first; i < first + count; i += block) {
      long m = Math.min(block, first + count - i), acc = b.at(0, x.offset() + i, es);
      Elementwise.combine(op, dt, mem, acc, mem, b.at(1, x.offset() + i, es), mem, acc, m);
      for (int j = 2; j < n; j++) Elementwise.accumulate(op, dt, mem, acc, mem, b.at(j, x.offset() + i, es), m);
      if (op == Reduction.AVG) Elementwise.divide(dt, mem, acc, m, n);
      for (int j = 1; j < n; j++) MemorySegment.copy(mem, acc, mem, b.at(j, x.offset() + i, es), m * es);
    }
  }

  /**
   * Publishes the next slice (number published + 1, index published - base): the whole slice, or for a
   * split slice the chunks the others reduce. Returns false if its slot is busy and !wait.
   */
  private boolean publish(Plan p, boolean wait) {
    long s = published + 1, k = s - p.base - 1, first = p.first(k), count = p.count(k);
    if (s > slots) {
      if (!wait && !region.allConsumed(s - slots, r)) return false;
      for (int j = 0; j < n; j++) if (j != r) region.awaitConsumed(j, s - slots, r, p.run);
    }
    int slot = (int) (s % slots), es = p.x.es();
    MemorySegment mem = region.memory();
    if (!p.split()) {
      MemorySegment.copy(p.x.seg(), p.x.at(first), mem, region.slot(r, slot), count * es);
    } else {
      for (int c = 0; c < n; c++) {
        if (c == r) continue;
        long c0 = Plan.chunk(count, n, c), c1 = Plan.chunk(count, n, c + 1);
        MemorySegment.copy(p.x.seg(), p.x.at(first + c0), mem, region.slot(r, slot) + c0 * es, (c1 - c0) * es);
      }
    }
    p.header[3] = k;
    region.publish(r, slot, s, p.header, p.run);
    published = s;
    return true;
  }

  /** Waits until every member has published slice s and checks their headers against this member's. */
  private void awaitPublished(Plan p, long s, long k, int slot) {
    p.header[3] = k;
    awaitHeaders(p.run, s, slot, p.header);
  }

  private void awaitHeaders(OpRun run, long s, int slot, long[] header) {
    for (int j = 0; j < n; j++) {
      if (j == r) continue;
      region.awaitPublished(j, s, r, run);
      long[] theirs = region.readHeader(j, slot);
      if (!java.util.Arrays.equals(theirs, header)) throw run.mismatch(j, describe(theirs, header));
    }
    if (s == 1) region.unlink();   // every member has published, so has mapped the file
  }

  /** Whole slice k: tensor = op(slot 0, ..., slot n-1), in member order; then marks it consumed. */
  private void combineAll(Plan p, long k) {
    long s = p.base + k + 1, first = p.first(k), count = p.count(k);
    int slot = (int) (s % slots);
    awaitPublished(p, s, k, slot);
    MemorySegment mem = region.memory();
    DType dt = p.run.dtype;
    Elementwise.combine(p.op, dt, mem, region.slot(0, slot), mem, region.slot(1, slot), p.x.seg(), p.x.at(first), count);
    for (int j = 2; j < n; j++) Elementwise.accumulate(p.op, dt, p.x.seg(), p.x.at(first), mem, region.slot(j, slot), count);
    if (p.op == Reduction.AVG) Elementwise.divide(dt, p.x.seg(), p.x.at(first), count, n);
    region.consume(r, s, p.run);
    done = s;
  }

  /**
   * Split slice k, this member's chunk r: op of every member's chunk r in member order (this member's
   * from its tensor, the others' from their slots) into chunk r of this member's slot, which the others
   * then copy, and into the tensor; marks it reduced.
   */
  private void reduceChunk(Plan p, long k) {
    long s = p.base + k + 1, first = p.first(k), count = p.count(k);
    int slot = (int) (s % slots), es = p.x.es();
    awaitPublished(p, s, k, slot);
    MemorySegment mem = region.memory(), xs = p.x.seg();
    DType dt = p.run.dtype;
    long c0 = Plan.chunk(count, n, r), c1 = Plan.chunk(count, n, r + 1), block = BLOCK_BYTES / es;
    for (long b = c0; b < c1; b += block) {
      long m = Math.min(block, c1 - b), acc = region.slot(r, slot) + b * es, mine = p.x.at(first + b);
      MemorySegment s0 = r == 0 ? xs : mem, s1 = r == 1 ? xs : mem;
      long o0 = r == 0 ? mine : region.slot(0, slot) + b * es, o1 = r == 1 ? mine : region.slot(1, slot) + b * es;
      Elementwise.combine(p.op, dt, s0, o0, s1, o1, mem, acc, m);
      for (int j = 2; j < n; j++)
        Elementwise.accumulate(p.op, dt, mem, acc, j == r ? xs : mem, j == r ? mine : region.slot(j, slot) + b * es, m);
      if (p.op == Reduction.AVG) Elementwise.divide(dt, mem, acc, m, n);
      MemorySegment.copy(mem, acc, xs, mine, m * es);
    }
    region.markReduced(r, s, p.run);
  }

  /** Split slice k: copies every other member's reduced chunk into the tensor, then marks the slice consumed. */
  private void gather(Plan p, long k) {
    long s = p.base + k + 1, first = p.first(k), count = p.count(k);
    int slot = (int) (s % slots), es = p.x.es();
    for (int j = 0; j < n; j++) {
      if (j == r) continue;
      region.awaitReduced(j, s, r, p.run);
      long c0 = Plan.chunk(count, n, j), c1 = Plan.chunk(count, n, j + 1);
      MemorySegment.copy(region.memory(), region.slot(j, slot) + c0 * es, p.x.seg(), p.x.at(first + c0), (c1 - c0) * es);
    }
    region.consume(r, s, p.run);
    done = s;
  }

  /**
   * A peer's header in words: "all_reduce #3 (SUM) of 1000 f32", "... in shared buffer 2 at element 0"; "...
   * of an ordinary tensor" where this member's call was on a shared buffer.
   */
  private static String describe(long[] h, long[] ours) {
    DType[] dts = DType.values();
    Reduction[] ops = Reduction.values();
    long kind = h[2] & (SHARED - 1);
    int dt = (int) (kind / 16), red = (int) (kind % 16);
    String dtype = dt >= 0 && dt < dts.length ? OpRun.name(dts[dt]) : "?";
    String reduction = red >= 0 && red < ops.length ? ops[red].name() : "?";
    String where = (h[2] & SHARED) == 0 ? ((ours[2] & SHARED) == 0 ? "" : " of an ordinary tensor (this rank's is in shared buffer " + (ours[3] >>> 40) + ")") : " in shared buffer " + (h[3] >>> 40) + " at element " + (h[3] & ((1L << 40) - 1));
    return Op.ALL_REDUCE.text + " #" + h[0] + " (" + reduction + ") of " + h[1] + " " + dtype + where;
  }

  @Override public void close() {
    if (region != null) region.unlink();
  }
}
