package io.colossal4j.distributed.cpu;

import io.colossal4j.backend.Backend;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.distributed.CollectiveArgs;
import io.colossal4j.distributed.CollectiveException;
import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.distributed.Reduction;
import io.colossal4j.distributed.Work;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.MemoryCategory;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;
import java.util.function.LongSupplier;

/**
 * The CPU process group: validates each call on the caller's thread (so bad arguments fail where they
 * are made), numbers it, and runs it on the group's own executor thread, in issue order, with the
 * {@link Algorithms}. Tensors must be CPU tensors ({@link CpuBackend#segment}).
 */
public final class CpuProcessGroup implements ProcessGroup {
  private final CpuWorld world;
  private final int id;
  private final String name;
  private final List<Integer> members;
  private final int rank;
  private final ExecutorService executor;
  private final Map<Long, Integer> sendCounters = new HashMap<>(), recvCounters = new HashMap<>();
  private final ReentrantLock running = new ReentrantLock();
  private long collectiveSeq;
  private int queued;
  private ShmAllReduce shm;
  private ShmSegmentAllReduce shmSegments;
  private ShmBuffers shmBuffers;

  CpuProcessGroup(CpuWorld world, int id, String label, List<Integer> worldRanks) {
    this.world = world;
    this.id = id;
    this.members = List.copyOf(worldRanks);
    this.rank = members.indexOf(world.transport.rank());
    if (rank < 0) throw new IllegalArgumentException("world rank " + world.transport.rank() + " is not a member of " + members);
    this.name = id == 0 ? label : label + members;
    this.executor = Executors.newSingleThreadExecutor(r -> {
      Thread t = new Thread(r, "c4j-" + name + "-rank" + world.transport.rank());
      t.setDaemon(true);
      return t;
    });
  }

  @Override public int rank() { return rank; }

  @Override public int size() { return members.size(); }

  @Override public List<Integer> worldRanks() { return members; }

  @Override public String name() { return name; }

  int id() { return id; }

  Transport transport() { return world.transport; }

  int worldRank(int groupRank) { return members.get(groupRank); }

  // ---------------------------------------------------------------- collectives

  @Override public Work allReduceAsync(Tensor t, Reduction op) { return allReduce(t, op, false); }

  @Override public void allReduce(Tensor t, Reduction op) { allReduce(t, op, true); }

  private Work allReduce(Tensor t, Reduction op, boolean sync) {
    check(Op.ALL_REDUCE, op, t);
    ShmBuffers.Placed placed = placed(t);
    if (placed != null) return submit(Op.ALL_REDUCE, t, sync, run -> shm.allReduceShared(run, placed, t.numel(), op));
    Consumer<OpRun> local = sharedMemory(t, op);
    return submit(Op.ALL_REDUCE, t, sync, local != null ? local : run -> Algorithms.allReduce(run, buf(t), t.numel(), op));
  }

  @Override public Work reduceScatterAsync(Tensor out, Tensor in, Reduction op) { return reduceScatter(out, in, op, false); }

  @Override public void reduceScatter(Tensor out, Tensor in, Reduction op) { reduceScatter(out, in, op, true); }

  private Work reduceScatter(Tensor out, Tensor in, Reduction op, boolean sync) {
    check(Op.REDUCE_SCATTER, op, out, in);
    if (in.numel() != out.numel() * size())
      throw bad(Op.REDUCE_SCATTER, "input has " + in.numel() + " elements, output " + out.numel() + "; the input must have group size " + size() + " times the output's");
    return submit(Op.REDUCE_SCATTER, in, sync, run -> Algorithms.reduceScatter(run, buf(out), buf(in), out.numel(), op));
  }

  @Override public Work allGatherAsync(Tensor out, Tensor in) { return allGather(out, in, false); }

  @Override public void allGather(Tensor out, Tensor in) { allGather(out, in, true); }

  private Work allGather(Tensor out, Tensor in, boolean sync) {
    check(Op.ALL_GATHER, null, out, in);
    if (out.numel() != in.numel() * size())
      throw bad(Op.ALL_GATHER, "input has " + in.numel() + " elements, output " + out.numel() + "; the output must have group size " + size() + " times the input's");
    return submit(Op.ALL_GATHER, in, sync, run -> Algorithms.allGather(run, buf(out), buf(in), in.numel()));
  }

  @Override public Work broadcastAsync(Tensor t, int root) { return broadcast(t, root, false); }

  @Override public void broadcast(Tensor t, int root) { broadcast(t, root, true); }

  private Work broadcast(Tensor t, int root, boolean sync) {
    check(Op.BROADCAST, null, t);
    checkRank(Op.BROADCAST, "root", root);
    return submit(Op.BROADCAST, t, sync, run -> Algorithms.broadcast(run, buf(t), t.numel(), root));
  }

  @Override public Work reduceAsync(Tensor t, int root, Reduction op) { return reduce(t, root, op, false); }

  @Override public void reduce(Tensor t, int root, Reduction op) { reduce(t, root, op, true); }

  private Work reduce(Tensor t, int root, Reduction op, boolean sync) {
    check(Op.REDUCE, op, t);
    checkRank(Op.REDUCE, "root", root);
    return submit(Op.REDUCE, t, sync, run -> Algorithms.reduce(run, buf(t), t.numel(), root, op));
  }

  @Override public Work allToAllAsync(Tensor out, Tensor in) { return allToAll(out, in, false); }

  @Override public void allToAll(Tensor out, Tensor in) { allToAll(out, in, true); }

  private Work allToAll(Tensor out, Tensor in, boolean sync) {
    check(Op.ALL_TO_ALL, null, out, in);
    if (in.numel() != out.numel() || in.numel() % size() != 0)
      throw bad(Op.ALL_TO_ALL, "input has " + in.numel() + " elements, output " + out.numel() + "; both must be equal and divisible by the group size " + size());
    return submit(Op.ALL_TO_ALL, in, sync, run -> Algorithms.allToAll(run, buf(out), buf(in), in.numel() / size()));
  }

  @Override public Work barrierAsync() { return submit(Op.BARRIER, Header.COLLECTIVE, null, null, 0, false, Algorithms::barrier); }

  @Override public void barrier() { submit(Op.BARRIER, Header.COLLECTIVE, null, null, 0, true, Algorithms::barrier); }

  /**
   * In memory shared by the members when they all run on this host and shared memory is on (else the
   * ordinary allocation of the interface); see {@link ShmBuffers}. Only CPU backends. If a member cannot
   * reserve its part of the file (the shared-memory file system is full: a container's /dev/shm is often
   * 64 MiB), every member takes the ordinary allocation instead, agreed by an all-reduce of the outcome:
   * touching a mapped page the file system cannot provide would kill the process.
   */
  @Override public Tensor allocateShared(Shape shape, DType dtype, Backend backend, MemoryCategory category) {
    if (!(backend instanceof CpuBackend cpu))
      throw bad(Op.ALLOCATE_SHARED, "backend " + backend.name() + " (" + backend.device() + ") is not a CPU backend; this group reduces CPU tensors");
    if (dtype == DType.BOOL) throw bad(Op.ALLOCATE_SHARED, "dtype bool is not supported; use i32, i64, f16, bf16, f32 or f64");
    String file = sharedFile();
    if (file == null) return ProcessGroup.super.allocateShared(shape, dtype, backend, category);
    ShmBuffers buffers = sharedBuffers(file);
    Tensor[] out = new Tensor[1];
    submit(Op.ALLOCATE_SHARED, Header.COLLECTIVE, null, dtype, shape.numel(), true, run -> out[0] = buffers.allocate(run, shape, dtype, cpu, category));
    Tensor everyone = Tensor.scalar(out[0] == null ? 0 : 1, DType.I32, cpu);
    allReduce(everyone, Reduction.MIN);
    if (everyone.item() == 1) return out[0];
    if (out[0] != null) buffers.drop(out[0]);
    return ProcessGroup.super.allocateShared(shape, dtype, backend, category);
  }

  /** This group's shared buffers (and the all-reduce that reduces them), created on first use. */
  synchronized ShmBuffers sharedBuffers(String file) {
    if (shmBuffers == null) shmBuffers = new ShmBuffers(file, size(), rank);
    if (shm == null) shm = new ShmAllReduce(file, size(), rank, ShmAllReduce.SLOTS, world.shmSliceBytes);
    return shmBuffers;
  }

  /** As {@link #sharedBuffers(String)}, or null when this group's members cannot share memory. */
  ShmBuffers sharedBuffers() {
    String file = sharedFile();
    return file == null ? null : sharedBuffers(file);
  }

  @Override public boolean isShared(Tensor t) { return t.isContiguous() && placed(t) != null; }

  /** The shared buffer a contiguous tensor lives in (its all-reduces run in place), or null. */
  private ShmBuffers.Placed placed(Tensor t) {
    ShmBuffers buffers;
    synchronized (this) {
      buffers = shmBuffers;
    }
    return buffers == null ? null : buffers.find(t);
  }

  // ---------------------------------------------------------------- point to point

  @Override public Work sendAsync(Tensor t, int peer, int tag) { return send(t, peer, tag, false); }

  @Override public void send(Tensor t, int peer, int tag) { send(t, peer, tag, true); }

  @Override public Work recvAsync(Tensor t, int peer, int tag) { return recv(t, peer, tag, false); }

  @Override public void recv(Tensor t, int peer, int tag) { recv(t, peer, tag, true); }

  private Work send(Tensor t, int peer, int tag, boolean sync) {
    check(Op.SEND, null, t);
    checkPeer(Op.SEND, peer);
    return submit(Op.SEND, Header.P2P, () -> p2pSeq(sendCounters, peer, tag), t.dtype(), t.numel(), sync, run -> run.send(peer, 0, seg(t), byteOffset(t), bytes(t)));
  }

  private Work recv(Tensor t, int peer, int tag, boolean sync) {
    check(Op.RECV, null, t);
    checkPeer(Op.RECV, peer);
    return submit(Op.RECV, Header.P2P, () -> p2pSeq(recvCounters, peer, tag), t.dtype(), t.numel(), sync, run -> run.recv(peer, 0, seg(t), byteOffset(t), bytes(t), null));
  }

  /** seq of point-to-point messages: tag in the high half, the count of earlier messages with (peer, tag) in the low half. */
  private long p2pSeq(Map<Long, Integer> counters, int peer, int tag) {
    long k = ((long) peer << 32) | (tag & 0xffffffffL);
    int count = counters.merge(k, 1, Integer::sum) - 1;
    return ((long) tag << 32) | (count & 0xffffffffL);
  }

  // ---------------------------------------------------------------- groups

  @Override public ProcessGroup subgroup(String label, List<Integer> groupRanks) {
    return world.group(label, CollectiveArgs.subgroupWorldRanks(this, members, label, groupRanks));
  }

  /** Closing the world group closes everything (connections, store, subgroups); closing a subgroup does nothing. */
  @Override public void close() {
    if (id == 0) world.close();
  }

  void shutdownExecutor() {
    executor.shutdownNow();
    if (shm != null) shm.close();
    if (shmSegments != null) shmSegments.close();
    if (shmBuffers != null) shmBuffers.close();
  }

  // ---------------------------------------------------------------- plumbing

  private Work submit(Op op, Tensor t, boolean sync, Consumer<OpRun> body) {
    return submit(op, Header.COLLECTIVE, null, t.dtype(), t.numel(), sync, body);
  }

  /**
   * Numbers the operation and runs it: inline on the caller's thread when it is synchronous and nothing
   * issued earlier is still queued (saves two thread hand-offs, which dominate small-message latency),
   * else on the group's executor. {@code running} serialises execution, and the decision and numbering
   * happen under this object's monitor, so operations execute in issue order either way.
   * {@code p2pSeq} is null for collectives (they take the next collective number).
   */
  private Work submit(Op op, int channel, LongSupplier p2pSeq, DType dtype, long numel, boolean sync, Consumer<OpRun> body) {
    long timeoutMillis = world.timeout.toMillis();
    long seq;
    boolean inline;
    synchronized (this) {
      seq = p2pSeq == null ? collectiveSeq++ : p2pSeq.getAsLong();
      CollectiveException failed = world.transport.mailbox().failure();
      if (failed != null)
        throw new CollectiveException(new OpRun(this, op, channel, seq, dtype, numel, timeoutMillis).where()
            + " refused: the group failed earlier: " + failed.getMessage(), failed);
      inline = sync && queued == 0;
      if (inline) running.lock();
      else queued++;
    }
    if (inline) {
      try {
        execute(new OpRun(this, op, channel, seq, dtype, numel, timeoutMillis), body);
        return Work.completed();
      } finally {
        running.unlock();
      }
    }
    String where = new OpRun(this, op, channel, seq, dtype, numel, timeoutMillis).where();
    CompletableFuture<Void> f = CompletableFuture.runAsync(() -> {
      running.lock();
      try {
        execute(new OpRun(this, op, channel, seq, dtype, numel, timeoutMillis), body);
      } finally {
        running.unlock();
        synchronized (this) {
          queued--;
        }
      }
    }, executor);
    Work w = new FutureWork(f, where);
    if (sync) w.await();
    return w;
  }

  private void execute(OpRun run, Consumer<OpRun> body) {
    try {
      body.accept(run);
    } catch (CollectiveException e) {
      world.transport.abort(e.getMessage());
      throw e;
    } catch (RuntimeException e) {
      var ce = new CollectiveException(run.where() + " failed: " + e, e);
      world.transport.abort(ce.getMessage());
      throw ce;
    }
  }

  /**
   * The shared-memory all-reduce for this tensor when every member runs on this host, else null: the
   * pipelined one for two members and for small tensors (up to {@link Algorithms#SMALL_BYTES}) of any
   * group, the segmented one for large tensors of larger groups (see {@link ShmSegmentAllReduce} why).
   * Each is created on first use; the host key is part of the file name, as two "nodes" of one job may
   * run on one machine.
   */
  private Consumer<OpRun> sharedMemory(Tensor t, Reduction op) {
    String file = sharedFile();
    if (file == null) return null;
    Algorithms.Buf x = buf(t);
    long numel = t.numel();
    synchronized (this) {
      if (size() == 2 || numel * t.dtype().byteSize() <= Algorithms.SMALL_BYTES) {
        if (shm == null) shm = new ShmAllReduce(file, size(), rank, ShmAllReduce.SLOTS, world.shmSliceBytes);
        ShmAllReduce path = shm;
        return run -> path.allReduce(run, x, numel, op);
      }
      if (shmSegments == null) shmSegments = new ShmSegmentAllReduce(file, size(), rank, world.shmSegmentBytes);
      ShmSegmentAllReduce path = shmSegments;
      return run -> {
        path.allReduce(run, x, numel, op);
        if (op == Reduction.AVG) Elementwise.divide(run.dtype, x.seg(), x.off(), numel, size());
      };
    }
  }

  /** The base name of this group's shared-memory files, or null when its members cannot share memory (off, alone, or on several hosts). */
  private String sharedFile() {
    if (!world.sharedMemory || size() < 2) return null;
    String here = world.transport.hostKey(world.transport.rank());
    for (int m : members) if (!world.transport.hostKey(m).equals(here)) return null;
    return world.transport.jobId() + "-" + Integer.toHexString(here.hashCode()) + "-g" + Integer.toHexString(id);
  }

  private static java.lang.foreign.MemorySegment seg(Tensor t) { return CpuBackend.segment(t); }

  private static long byteOffset(Tensor t) { return t.offset() * t.dtype().byteSize(); }

  private static long bytes(Tensor t) { return t.numel() * t.dtype().byteSize(); }

  private static Algorithms.Buf buf(Tensor t) { return new Algorithms.Buf(seg(t), byteOffset(t), t.dtype().byteSize()); }

  private void check(Op op, Reduction red, Tensor... ts) {
    CollectiveArgs.checkTensors(this, op.text, red, ts);
    for (Tensor t : ts) seg(t);   // CPU tensors only: names the device otherwise
  }

  private void checkRank(Op op, String what, int r) { CollectiveArgs.checkRank(this, op.text, what, r); }

  private void checkPeer(Op op, int peer) { CollectiveArgs.checkPeer(this, op.text, peer); }

  private IllegalArgumentException bad(Op op, String why) { return CollectiveArgs.bad(this, op.text, why); }

  @Override public String toString() { return "CpuProcessGroup(" + name + ", rank " + rank + "/" + size() + ")"; }
}
