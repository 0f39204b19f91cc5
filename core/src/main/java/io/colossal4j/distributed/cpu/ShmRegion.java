package io.colossal4j.distributed.cpu;

import io.colossal4j.distributed.CollectiveException;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;

/**
 * One mapped file shared by the n members of a group on one host: per member a control block and a ring
 * of {@code slots} slots of {@code sliceBytes}. Layout (byte offsets):
 * <pre>
 *   member j's control block, at j * CONTROL:
 *     +0    published: the last slice number whose data and header j has written (release store)
 *     +128  consumed:  the last slice number j has finished reading from every member's slots
 *     +256  sleeping:  1 while j sleeps waiting for a counter of another member (see {@link #await})
 *     +384  reduced:   the last slice number whose chunk j has reduced into its own slot (split slices only)
 *     +512  one header of 32 bytes per slot: operation number, numel, kind, slice index within the operation
 *   common block, at n * CONTROL (all-reduces of shared buffers, {@link ShmAllReduce#allReduceShared}):
 *     +0    claimed:   pieces handed out so far, over all such operations (compare-and-set by any member)
 *     +128  finished:  pieces reduced so far (atomic add by any member)
 *   data, from dataBase: member j's slot s at dataBase + (j * slots + s) * sliceBytes
 * </pre>
 * Counters sit on separate cache-line pairs so that a member's stores do not disturb its peers' polling.
 * The file is zero-filled at creation, so every counter starts at 0. A new file is created (or the
 * existing one opened) by whichever member comes first; its name is removed once every member has
 * published (so mapped) it, and nothing remains on disk even if a member dies later (before that, the
 * file's locks tell a dead job's file from a live one's: {@link ShmFiles}).
 *
 * <p>Waiting ({@link #await}) spins for up to {@link #SPIN_NANOS}, yields until {@link #YIELD_NANOS}, then
 * sleeps until woken: a peer a few microseconds behind is met at once without a system call; a peer sharing
 * this core gets it (this machine may have fewer cores than ranks, and is shared); a peer descheduled for
 * longer finds the waiter off the run queue rather than competing with it. (Measured on the 2-core VM
 * under load 6 to 9: 4 KiB latency 35 to 55 us with the yield phase, 75 to 180 us without.) The spin budget
 * adapts: it is halved after every wait that needed this thread to give its core away (a yield that let
 * another thread run, or a sleep) and restored after one that did not. Two ranks whose threads the
 * scheduler has put on one core (it does, after wake-ups) then hand the core over at once instead of
 * spinning 20 us per wait while the peer cannot run. (2 ranks as threads, load 7 to 9, three pairs of
 * runs: 64 MiB in 13.7 to 22.5 ms wall and 13.6 to 16.3 ms of CPU over both ranks, against 24.5 to 26.3 and
 * 17.8 to 19.5 ms with the fixed budget; 4 KiB in 6 to 31 us against 33 to 38, best of three trials.)
 * Sleeping is a futex-style handshake over the transport: the waiter raises its sleeping flag, re-reads
 * the counter, and sleeps on its mailbox; a member that publishes or consumes then reads every peer's flag
 * and, if it can clear a raised one, sends that peer a WAKE message. Both sides store, then load the other's
 * word with volatile (sequentially consistent) accesses, so at least one of them sees the other: either the
 * waiter sees the new counter and does not sleep, or the writer sees the flag and wakes it.
 */
final class ShmRegion {
  private static final long HEADERS = 512, HEADER_BYTES = 32, COMMON = 256;
  private static final long SPIN_NANOS = 20_000, YIELD_NANOS = 200_000;
  /** A yield that took longer than this gave the core to another thread. */
  private static final long YIELDED_AWAY_NANOS = 5_000;
  /** Longest sleep without a check of the job's health and the deadline (a WAKE normally comes much sooner). */
  private static final long SLEEP_NANOS = 20_000_000;
  private static final VarHandle LONG = ValueLayout.JAVA_LONG.varHandle();

  final long sliceBytes;
  /** Slots per member: a member may publish this many slices ahead of the slowest reader. */
  final int slots;
  private final long control;
  private final int n;
  private final ShmFiles.Mapped file;
  private final MemorySegment mem;
  private final long dataBase;
  private boolean unlinked;
  /**
   * This member's spin budget before yielding: {@link #SPIN_NANOS} after a wait that ended without this
   * thread giving its core away, halved after one that needed it (see the class comment).
   */
  private long spinNanos = SPIN_NANOS;

  private ShmRegion(ShmFiles.Mapped file, int n, int slots, long sliceBytes, long dataBase) {
    this.file = file;
    this.mem = file.memory();
    this.n = n;
    this.slots = slots;
    this.control = controlBytes(slots);
    this.sliceBytes = sliceBytes;
    this.dataBase = dataBase;
  }

  /** Creates or opens the file {@code c4j-<name>} (see {@link ShmFiles}) and maps it. */
  static ShmRegion map(String name, int n, int slots, long sliceBytes) throws IOException {
    if (sliceBytes <= 0 || sliceBytes % 64 != 0) throw new IllegalArgumentException("slice bytes must be a positive multiple of 64, got " + sliceBytes);
    if (slots < 2) throw new IllegalArgumentException("need at least 2 slots per member, got " + slots);
    long dataBase = (n * controlBytes(slots) + COMMON + 4095) & ~4095L, size = dataBase + n * slots * sliceBytes;
    return new ShmRegion(ShmFiles.map(ShmFiles.path(name), size), n, slots, sliceBytes, dataBase);
  }

  private static long controlBytes(int slots) { return (HEADERS + slots * HEADER_BYTES + 1023) & ~1023L; }

  MemorySegment memory() { return mem; }

  long slot(int member, int slot) { return dataBase + (member * (long) slots + slot) * sliceBytes; }

  private long published(int member) { return member * control; }

  private long consumed(int member) { return member * control + 128; }

  private long sleeping(int member) { return member * control + 256; }

  private long reducedAt(int member) { return member * control + 384; }

  private long headerAt(int member, int slot) { return member * control + HEADERS + slot * HEADER_BYTES; }

  private long claimed() { return n * control; }

  private long finished() { return n * control + 128; }

  /**
   * Hands out the next piece below {@code end} (a piece number counted over all operations), or returns -1
   * once every piece below end is taken. The counter never passes end, so the next operation's pieces
   * start there on every member.
   */
  long claim(long end) {
    while (true) {
      long c = (long) LONG.getVolatile(mem, claimed());
      if (c >= end) return -1;
      if (LONG.compareAndSet(mem, claimed(), c, c + 1)) return c;
    }
  }

  /** Adds {@code pieces} this member reduced; the member that completes {@code end} wakes the sleepers. */
  void finish(long pieces, long end, int me, OpRun run) {
    long now = (long) LONG.getAndAdd(mem, finished(), pieces) + pieces;
    if (now >= end) wakeSleepers(me, run);
  }

  /** Waits until every piece below {@code end} is reduced, by whichever member (each is checked alive while this waits). */
  void awaitFinished(long end, int me, OpRun run) { await(finished(), end, me, -1, run); }

  /** Whether every member but {@code me} has consumed at least slice {@code seq} (a non-blocking look). */
  boolean allConsumed(long seq, int me) {
    for (int j = 0; j < n; j++) if (j != me && (long) LONG.getAcquire(mem, consumed(j)) < seq) return false;
    return true;
  }

  /** Writes this member's header for a slot, then publishes slice number {@code seq} (data and header first); wakes sleepers. */
  void publish(int member, int slot, long seq, long[] header, OpRun run) {
    long h = headerAt(member, slot);
    for (int i = 0; i < 4; i++) mem.set(ValueLayout.JAVA_LONG, h + 8L * i, header[i]);
    LONG.setVolatile(mem, published(member), seq);
    wakeSleepers(member, run);
  }

  /** Marks slice {@code seq} consumed by this member (its reads of every slot are done); wakes sleepers. */
  void consume(int member, long seq, OpRun run) {
    LONG.setVolatile(mem, consumed(member), seq);
    wakeSleepers(member, run);
  }

  /** Marks this member's chunk of slice {@code seq} reduced into its slot (readable by the others); wakes sleepers. */
  void markReduced(int member, long seq, OpRun run) {
    LONG.setVolatile(mem, reducedAt(member), seq);
    wakeSleepers(member, run);
  }

  void awaitReduced(int member, long seq, int me, OpRun run) { await(reducedAt(member), seq, me, member, run); }

  /** The header member wrote for a slot (valid after {@link #awaitPublished} of that slice). */
  long[] readHeader(int member, int slot) {
    long h = headerAt(member, slot);
    long[] out = new long[4];
    for (int i = 0; i < 4; i++) out[i] = mem.get(ValueLayout.JAVA_LONG, h + 8L * i);
    return out;
  }

  void awaitPublished(int member, long seq, int me, OpRun run) { await(published(member), seq, me, member, run); }

  void awaitConsumed(int member, long seq, int me, OpRun run) { await(consumed(member), seq, me, member, run); }

  private void wakeSleepers(int me, OpRun run) {
    for (int j = 0; j < n; j++)
      if (j != me && (long) LONG.getVolatile(mem, sleeping(j)) != 0 && LONG.compareAndSet(mem, sleeping(j), 1L, 0L)) run.wake(j);
  }

  /**
   * Waits until member {@code member}'s counter at {@code off} (a common counter: member -1) reaches {@code target}: spins (up to
   * the adaptive budget), yields, then sleeps until woken (see the class comment), checking between sleeps that the
   * job is alive, the member (every other member, for -1) still in it and the operation's deadline not passed (each failure throws,
   * naming the operation).
   */
  private void await(long off, long target, int me, int member, OpRun run) {
    if ((long) LONG.getAcquire(mem, off) >= target) return;
    long start = System.nanoTime(), waited;
    boolean gaveAway = false;
    do {
      for (int i = 0; i < 128; i++) {
        if ((long) LONG.getAcquire(mem, off) >= target) {
          spinNanos = gaveAway ? spinNanos / 2 : SPIN_NANOS;
          return;
        }
        Thread.onSpinWait();
      }
      waited = System.nanoTime() - start;
      if (waited > spinNanos) {
        Thread.yield();
        gaveAway |= System.nanoTime() - start - waited > YIELDED_AWAY_NANOS;
      }
    } while (waited < YIELD_NANOS);
    spinNanos /= 2;
    Mailbox mailbox = run.group.transport().mailbox();
    while (true) {
      if ((long) LONG.getAcquire(mem, off) >= target) break;   // before the health check: the member may have finished and left
      if (member >= 0) run.checkAlive(member);
      else for (int j = 0; j < n; j++) if (j != me) run.checkAlive(j);
      long seen = mailbox.version();
      LONG.setVolatile(mem, sleeping(me), 1L);
      if ((long) LONG.getVolatile(mem, off) >= target) break;
      mailbox.awaitChange(seen, SLEEP_NANOS);
      if ((long) LONG.getAcquire(mem, off) >= target) break;
    }
    LONG.setVolatile(mem, sleeping(me), 0L);
  }

  /** Removes the file's name (idempotent; the mappings stay valid). Call once every member has mapped it. */
  void unlink() {
    if (unlinked) return;
    unlinked = true;
    ShmFiles.release(file);
  }

  @Override public String toString() { return "ShmRegion(" + file.file() + ", " + n + " members, slices of " + sliceBytes + " bytes)"; }

  static CollectiveException mapFailure(OpRun run, String name, IOException e) {
    return new CollectiveException(run.where() + ": cannot map shared memory c4j-" + name + ": " + e.getMessage(), e);
  }
}
