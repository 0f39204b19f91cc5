package io.colossal4j.distributed.cpu;

import io.colossal4j.distributed.CollectiveException;
import io.colossal4j.distributed.Reduction;
import io.colossal4j.tensor.DType;
import java.lang.foreign.MemorySegment;

/**
 * One running operation of one group: sends and receives pieces of memory to and from group members,
 * checking that each message received belongs to the same operation, dtype and size as this rank's call.
 * Regions larger than {@link #PIECE} travel as several messages so the receiver can work on the first
 * pieces while later ones are still on the wire. Used by one thread (the group's executor).
 */
final class OpRun {
  static final long PIECE = 4L << 20;
  private static final int PIECE_BITS = 20;

  final CpuProcessGroup group;
  final Op op;
  final long seq;
  final DType dtype;
  final long numel;
  final int channel;
  private final long deadline;
  private final long timeoutMillis;

  OpRun(CpuProcessGroup group, Op op, int channel, long seq, DType dtype, long numel, long timeoutMillis) {
    this.group = group;
    this.op = op;
    this.channel = channel;
    this.seq = seq;
    this.dtype = dtype;
    this.numel = numel;
    this.timeoutMillis = timeoutMillis;
    this.deadline = System.nanoTime() + timeoutMillis * 1_000_000L;
  }

  /** "rank 1 of group tp[2,3]: all_reduce #7 (1000 f32)", the prefix of every message about this operation. */
  String where() {
    String what = channel == Header.P2P ? op.text + " tag " + (seq >> 32) + " #" + (int) seq : op.text + " #" + seq;
    return "rank " + group.rank() + " of group " + group.name() + ": " + what + " (" + numel + " " + name(dtype) + ")";
  }

  static String name(DType dt) { return dt == null ? "-" : dt.name().toLowerCase(); }

  /** Sends {@code bytes} of {@code seg} from {@code off} to group member {@code peer} as algorithm step {@code step}. */
  void send(int peer, int step, MemorySegment seg, long off, long bytes) {
    long pieces = Math.max(1, (bytes + PIECE - 1) / PIECE);
    checkStep(step, pieces);
    Transport t = group.transport();
    for (long p = 0; p < pieces; p++) {
      long from = p * PIECE, len = Math.min(PIECE, bytes - from);
      Header h = new Header(t.rank(), group.id(), channel, op, dtype, seq, (step << PIECE_BITS) | (int) p, numel, len);
      t.send(group.worldRank(peer), h, seg.asSlice(off + from, len));
    }
  }

  /** Receives step {@code step} from {@code peer} into seg[off, off + bytes): copied, or combined with {@code reduce} when non-null. */
  void recv(int peer, int step, MemorySegment seg, long off, long bytes, Reduction reduce) {
    long pieces = Math.max(1, (bytes + PIECE - 1) / PIECE);
    checkStep(step, pieces);
    for (long p = 0; p < pieces; p++) {
      long from = p * PIECE, len = Math.min(PIECE, bytes - from);
      Message m = take(peer, (step << PIECE_BITS) | (int) p);
      if (m.header().payloadBytes() != len) throw mismatch(peer, "a piece of " + m.header().payloadBytes() + " bytes where " + len + " were expected");
      if (reduce == null) MemorySegment.copy(m.payload(), 0, seg, off + from, len);
      else Elementwise.accumulate(reduce, dtype, seg, off + from, m.payload(), 0, len / dtype.byteSize());
    }
  }

  /** Receives a zero-byte message (barriers, shared-memory phase signals). */
  void recvSignal(int peer, int step) { take(peer, step << PIECE_BITS); }

  void sendSignal(int peer, int step) { send(peer, step, MemorySegment.NULL, 0, 0); }

  private Message take(int peer, int step) {
    Header.Key key = new Header.Key(group.worldRank(peer), group.id(), channel, seq, step);
    Message m = group.transport().mailbox().take(key, deadline, where(), timeoutMillis);
    Header h = m.header();
    Op expected = op == Op.RECV ? Op.SEND : op;
    if (h.op() != expected || h.dtype() != dtype || h.numel() != numel) throw mismatch(peer, h.op().text + " of " + h.numel() + " " + name(h.dtype()));
    return m;
  }

  /** Wakes group member {@code peer}, asleep on shared memory this rank just changed. */
  void wake(int peer) {
    Transport t = group.transport();
    t.send(group.worldRank(peer), new Header(t.rank(), group.id(), Header.COLLECTIVE, Op.WAKE, null, -1, 0, 0, 0), MemorySegment.NULL);
  }

  /** Throws (prefixed by {@link #where}) if the job failed, group member {@code peer} left, or this operation timed out. */
  void checkAlive(int peer) {
    group.transport().mailbox().check(group.worldRank(peer), deadline, where(), timeoutMillis);
  }

  /** Aborts the job: group member {@code peer} called {@code theirs} where this rank called this operation. */
  CollectiveException mismatch(int peer, String theirs) {
    String msg = where() + ": group rank " + peer + " (world rank " + group.worldRank(peer) + ") sent " + theirs
        + "; every member must call the same collective with the same dtype and number of elements";
    group.transport().abort(msg);
    return new CollectiveException(msg);
  }

  private void checkStep(int step, long pieces) {
    if (step >= (1 << (30 - PIECE_BITS)) || pieces > (1 << PIECE_BITS))
      throw new CollectiveException(where() + ": tensor too large for the message numbering (" + pieces + " pieces)");
  }
}
