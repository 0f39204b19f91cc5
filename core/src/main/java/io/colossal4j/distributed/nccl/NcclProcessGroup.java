package io.colossal4j.distributed.nccl;

import io.colossal4j.backend.cuda.CudaBackend;
import io.colossal4j.backend.cuda.ffi.CudaException;
import io.colossal4j.backend.cuda.ffi.Driver;
import io.colossal4j.backend.cuda.ffi.Nccl;
import io.colossal4j.distributed.CollectiveArgs;
import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.distributed.Reduction;
import io.colossal4j.distributed.Work;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The NCCL process group: {@link ProcessGroup} for tensors on this rank's GPU. Each call is validated on the
 * caller's thread, then queued on the group's communicator stream after an event that orders it behind
 * everything already queued on the backend's compute stream; {@link Work#await()} orders the compute stream
 * behind it in turn (so a data-parallel bucket reduces while backward keeps computing, and the optimizer step
 * waits for it on the GPU, not on the host). Host copies of a tensor synchronise the compute stream, so they see
 * the result after {@code await}. {@link #barrier} blocks the host.
 *
 * <p>The group's communicator is created on its first operation (collectively, as NCCL requires) and kept.
 * Point-to-point uses one two-rank communicator per direction: a send from a to b and a send from b to a never
 * queue behind each other, so exchanges such as 1F1B's (stage 0 sends activations while stage 1 sends
 * gradients) cannot deadlock. NCCL matches point-to-point messages in issue order, not by tag: the two sides
 * must send and receive in the same order (the CPU group matches tags out of order; schedules that rely on that
 * do not work here).
 */
public final class NcclProcessGroup implements ProcessGroup {
  private final NcclWorld world;
  private final String name;
  private final List<Integer> members;
  private final int rank;
  private final Map<Integer, Communicator> sends = new HashMap<>(), recvs = new HashMap<>();
  private Communicator comm;
  private Tensor barrierScratch;
  private long seq;

  NcclProcessGroup(NcclWorld world, String name, List<Integer> members) {
    this.world = world;
    this.name = name;
    this.members = List.copyOf(members);
    this.rank = members.indexOf(world.rank);
    if (rank < 0) throw new IllegalArgumentException("world rank " + world.rank + " is not a member of " + members);
  }

  @Override public int rank() { return rank; }

  @Override public int size() { return members.size(); }

  @Override public List<Integer> worldRanks() { return members; }

  @Override public String name() { return name; }

  /** The GPU this group's tensors must be on. */
  public CudaBackend backend() { return world.backend(); }

  // ---------------------------------------------------------------- collectives

  @Override public Work allReduceAsync(Tensor t, Reduction op) {
    check(NcclOp.ALL_REDUCE, op, t);
    return launch(NcclOp.ALL_REDUCE, t, false, (n, c, s) -> n.allReduce(addr(t), addr(t), t.numel(), dt(t), red(op), c, s), t);
  }

  @Override public Work reduceScatterAsync(Tensor out, Tensor in, Reduction op) {
    check(NcclOp.REDUCE_SCATTER, op, out, in);
    if (in.numel() != out.numel() * size())
      throw bad(NcclOp.REDUCE_SCATTER, "input has " + in.numel() + " elements, output " + out.numel() + "; the input must have group size " + size() + " times the output's");
    return launch(NcclOp.REDUCE_SCATTER, in, false, (n, c, s) -> n.reduceScatter(addr(in), addr(out), out.numel(), dt(in), red(op), c, s), in, out);
  }

  @Override public Work allGatherAsync(Tensor out, Tensor in) {
    check(NcclOp.ALL_GATHER, null, out, in);
    if (out.numel() != in.numel() * size())
      throw bad(NcclOp.ALL_GATHER, "input has " + in.numel() + " elements, output " + out.numel() + "; the output must have group size " + size() + " times the input's");
    return launch(NcclOp.ALL_GATHER, in, false, (n, c, s) -> n.allGather(addr(in), addr(out), in.numel(), dt(in), c, s), in, out);
  }

  @Override public Work broadcastAsync(Tensor t, int root) {
    check(NcclOp.BROADCAST, null, t);
    checkRank(NcclOp.BROADCAST, "root", root);
    return launch(NcclOp.BROADCAST, t, false, (n, c, s) -> n.broadcast(addr(t), addr(t), t.numel(), dt(t), root, c, s), t);
  }

  @Override public Work reduceAsync(Tensor t, int root, Reduction op) {
    check(NcclOp.REDUCE, op, t);
    checkRank(NcclOp.REDUCE, "root", root);
    return launch(NcclOp.REDUCE, t, false, (n, c, s) -> n.reduce(addr(t), addr(t), t.numel(), dt(t), red(op), root, c, s), t);
  }

  /** NCCL has no all-to-all: one grouped launch of a send and a receive per peer, and a copy of this rank's own chunk. */
  @Override public Work allToAllAsync(Tensor out, Tensor in) {
    check(NcclOp.ALL_TO_ALL, null, out, in);
    if (in.numel() != out.numel() || in.numel() % size() != 0)
      throw bad(NcclOp.ALL_TO_ALL, "input has " + in.numel() + " elements, output " + out.numel() + "; both must be equal and divisible by the group size " + size());
    long chunk = in.numel() / size(), bytes = chunk * in.dtype().byteSize();
    return launch(NcclOp.ALL_TO_ALL, in, false, (n, c, s) -> {
      world.driver().copyDeviceToDevice(addr(out) + rank * bytes, addr(in) + rank * bytes, bytes, s);
      n.groupStart();
      for (int j = 0; j < size(); j++) {
        if (j == rank) continue;
        n.send(addr(in) + j * bytes, chunk, dt(in), j, c, s);
        n.recv(addr(out) + j * bytes, chunk, dt(in), j, c, s);
      }
      return n.groupEnd();
    }, in, out);
  }

  /** An all-reduce of one element that the host waits for. */
  @Override public Work barrierAsync() {
    Tensor t = scratch();
    return launch(NcclOp.BARRIER, t, true, (n, c, s) -> n.allReduce(addr(t), addr(t), 1, dt(t), Nccl.RedOp.SUM, c, s), t);
  }

  // ---------------------------------------------------------------- point to point

  @Override public Work sendAsync(Tensor t, int peer, int tag) {
    check(NcclOp.SEND, null, t);
    checkPeer(NcclOp.SEND, peer);
    return launchP2p(NcclOp.SEND, t, peer, tag, (n, c, s) -> n.send(addr(t), t.numel(), dt(t), 1, c, s));
  }

  @Override public Work recvAsync(Tensor t, int peer, int tag) {
    check(NcclOp.RECV, null, t);
    checkPeer(NcclOp.RECV, peer);
    return launchP2p(NcclOp.RECV, t, peer, tag, (n, c, s) -> n.recv(addr(t), t.numel(), dt(t), 0, c, s));
  }

  // ---------------------------------------------------------------- groups

  @Override public ProcessGroup subgroup(String label, List<Integer> groupRanks) {
    return world.group(label, CollectiveArgs.subgroupWorldRanks(this, members, label, groupRanks));
  }

  /** Closing the world group destroys every communicator and releases the store; closing a subgroup does nothing. */
  @Override public void close() {
    if (members.size() == world.size) world.close();
  }

  // ---------------------------------------------------------------- plumbing

  /** One NCCL launch on a communicator: returns SUCCESS or IN_PROGRESS. */
  @FunctionalInterface interface Launch { int run(Nccl nccl, long comm, long stream); }

  private Work launch(NcclOp op, Tensor t, boolean hostBlocking, Launch body, Tensor... keep) {
    String where;
    Communicator c;
    synchronized (this) {
      where = where(op, "#" + seq++, t);
      world.throwIfFailed(where);
      if (comm == null) comm = world.create(name, key(), members);
      c = comm;
    }
    return submit(c, where, t.numel() == 0 && op != NcclOp.BARRIER, hostBlocking, body, keep);
  }

  private Work launchP2p(NcclOp op, Tensor t, int peer, int tag, Launch body) {
    String where;
    Communicator c;
    synchronized (this) {
      where = where(op, "to/from group rank " + peer + " tag " + tag, t);
      world.throwIfFailed(where);
      if (!sends.containsKey(peer)) createPair(peer);
      c = (op == NcclOp.SEND ? sends : recvs).get(peer);
    }
    return submit(c, where, t.numel() == 0, false, body, t);
  }

  /**
   * Both directions' communicators with {@code peer}, lower rank's sends first: the two ranks create them in
   * the same order whichever of them sends first (creating one direction each would wait on each other).
   */
  private void createPair(int peer) {
    int lo = Math.min(rank, peer), hi = Math.max(rank, peer);
    Tensor one = scratch();
    for (int[] d : new int[][] {{lo, hi}, {hi, lo}}) {
      int from = d[0], to = d[1];
      Communicator c = world.create(name + " p2p " + from + ">" + to, key() + "/p2p/" + members.get(from) + ">" + members.get(to),
          List.of(members.get(from), members.get(to)));
      (from == rank ? sends : recvs).put(peer, c);
      // NCCL connects a pair on its first message, on the host, with both sides taking part: connect each
      // direction now, in the same order on both ranks, so a first send that meets a first send cannot hang
      boolean sending = from == rank;
      NcclOp op = sending ? NcclOp.SEND : NcclOp.RECV;
      submit(c, where(op, "connecting with group rank " + peer, one), false, false,
          (n, h, s) -> sending ? n.send(addr(one), 1, dt(one), 1, h, s) : n.recv(addr(one), 1, dt(one), 0, h, s), one).await();
    }
  }

  private synchronized Tensor scratch() {
    if (barrierScratch == null) barrierScratch = Tensor.zeros(Shape.of(1), DType.F32, world.backend());
    return barrierScratch;
  }

  /**
   * Queues {@code body} on {@code c}'s stream behind the compute stream's work, then records the event the work
   * waits on. An empty operation queues nothing (every member skips it alike).
   */
  private Work submit(Communicator c, String where, boolean empty, boolean hostBlocking, Launch body, Tensor... keep) {
    if (empty) return Work.completed();
    Driver d = world.driver();
    world.backend().enter();
    try {
      long ready = d.eventCreate(Driver.EVENT_DISABLE_TIMING);
      d.eventRecord(ready, world.backend().stream());
      d.streamWaitEvent(c.stream, ready);
      d.eventDestroy(ready);
      int status = body.run(world.nccl(), c.live(), c.stream);
      world.settle(c, status, where, System.nanoTime() + world.options.timeout().toNanos());
      long done = d.eventCreate(Driver.EVENT_DISABLE_TIMING);
      d.eventRecord(done, c.stream);
      NcclWork w = new NcclWork(world, where, done, hostBlocking, keep);
      world.watch(w);
      return w;
    } catch (CudaException | IllegalStateException e) {
      throw world.fail(where + " failed: " + e.getMessage());
    }
  }

  private String key() {
    StringBuilder sb = new StringBuilder();
    for (int m : members) sb.append(sb.isEmpty() ? "" : ",").append(m);
    return sb.toString();
  }

  private String where(NcclOp op, String which, Tensor t) {
    return "rank " + rank + " of group " + name + " (world rank " + world.rank + "): " + op.text + " " + which
        + " (" + t.numel() + " " + t.dtype().name().toLowerCase() + ", NCCL)";
  }

  private long addr(Tensor t) { return world.backend().address(t); }

  private static int dt(Tensor t) { return Nccl.dataType(t.dtype()); }

  private static Nccl.RedOp red(Reduction op) {
    return switch (op) {
      case SUM -> Nccl.RedOp.SUM;
      case AVG -> Nccl.RedOp.AVG;
      case MAX -> Nccl.RedOp.MAX;
      case MIN -> Nccl.RedOp.MIN;
    };
  }

  private void check(NcclOp op, Reduction red, Tensor... ts) {
    CollectiveArgs.checkTensors(this, op.text, red, ts);
    for (Tensor t : ts)
      if (t.backend() != world.backend())
        throw bad(op, "tensor " + t.shape() + " is on " + t.backend().name() + "; this NCCL group works on tensors of " + world.backend().name());
  }

  private void checkRank(NcclOp op, String what, int r) { CollectiveArgs.checkRank(this, op.text, what, r); }

  private void checkPeer(NcclOp op, int peer) { CollectiveArgs.checkPeer(this, op.text, peer); }

  private IllegalArgumentException bad(NcclOp op, String why) { return CollectiveArgs.bad(this, op.text, why); }

  @Override public String toString() { return "NcclProcessGroup(" + name + ", rank " + rank + "/" + size() + ")"; }
}
