package io.colossal4j.distributed;

import io.colossal4j.backend.Backend;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.MemoryCategory;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.List;

/**
 * A set of ranks that communicate. This is what data, tensor and pipeline parallelism and ZeRO program
 * against; the CPU backend implements it over TCP, shared memory or in-JVM queues, an NCCL backend over
 * NCCL communicators.
 *
 * <p>Contracts, shared by every implementation:
 * <ul>
 *   <li>Tensors are contiguous and of one of f32, f64, bf16, f16, i32, i64; every member passes tensors of
 *   the same dtype and size to a collective (a mismatch fails on every member, naming both sides).</li>
 *   <li>Operations run in the order they were issued, on every member in the same order. An {@code *Async}
 *   method returns at once; its tensors belong to the operation until {@link Work#await()} returns. The
 *   synchronous form is the async form awaited.</li>
 *   <li>Results are in place where PyTorch's are ({@code all_reduce}, {@code broadcast}, {@code reduce});
 *   every member of an all-reduce ends with bit-identical values.</li>
 *   <li>Failure is fail-stop: a dead peer, a timeout or a mismatch aborts the whole group (and its
 *   sibling groups) with a {@link CollectiveException}; every later call throws it again.</li>
 *   <li>Ranks in arguments ({@code root}, {@code peer}) are ranks within this group, 0..size-1.</li>
 * </ul>
 * Thread-safety: the methods may be called from any thread, but members must issue collectives in one order,
 * so in practice one thread per rank issues them.
 */
public interface ProcessGroup extends AutoCloseable {
  /** This process's rank within the group. */
  int rank();

  int size();

  /** The members' ranks in the world group, in group-rank order. */
  List<Integer> worldRanks();

  /** A short name for messages ({@code world}, {@code tp[0,1]}). */
  String name();

  /** tensor = reduce over members of tensor, in place. */
  Work allReduceAsync(Tensor tensor, Reduction op);

  /**
   * out (n elements) = reduction over members of chunk {@code rank()} of in (size() * n elements, chunk j
   * being elements [j*n, (j+1)*n)). {@code in} is not modified.
   */
  Work reduceScatterAsync(Tensor out, Tensor in, Reduction op);

  /** out (size() * n elements) = the members' {@code in} (n elements each) concatenated in rank order. */
  Work allGatherAsync(Tensor out, Tensor in);

  /** tensor on every member = tensor of {@code root}. */
  Work broadcastAsync(Tensor tensor, int root);

  /** tensor on {@code root} = reduction over members; other members' tensors are left unchanged. */
  Work reduceAsync(Tensor tensor, int root, Reduction op);

  /**
   * Chunk j of {@code in} (size() equal chunks) goes to member j; chunk j of {@code out} comes from member j.
   * in and out have equal sizes divisible by size().
   */
  Work allToAllAsync(Tensor out, Tensor in);

  /** Sends tensor to {@code peer}; matched by the peer's {@link #recvAsync} with the same tag, in order per tag. */
  Work sendAsync(Tensor tensor, int peer, int tag);

  /** Receives into tensor (same dtype and size as the sender's) from {@code peer}. */
  Work recvAsync(Tensor tensor, int peer, int tag);

  /** Completes when every member has reached it. */
  Work barrierAsync();

  /**
   * The group of the given members of this group (ranks within this group, distinct, in the order that
   * defines the new group's ranks). Every listed member must call this with the same list; creation needs no
   * communication and the result is cached by member list, so calling it again returns the same object.
   * {@code label} names the group in messages ({@code tp}, {@code dp}).
   */
  ProcessGroup subgroup(String label, List<Integer> members);

  /**
   * A zero-filled contiguous tensor on {@code backend} for this group to all-reduce again and again (a
   * gradient bucket): the group may place it where every member reaches it directly, as NCCL's registered
   * buffers. The CPU group places it in memory shared by the members of one host, and all-reduces of it
   * (or of any contiguous view of it) then read and write every member's buffer in place, with no copy in or
   * out; elsewhere (another group, members on several hosts) it is an ordinary allocation, which every
   * collective accepts as before. Collective: every member calls it, in the same order relative to the
   * group's other operations, with the same shape and dtype (a mismatch fails on every member, named).
   * The memory lives until the world group closes (a tensor used after that fails instead of reading freed
   * memory); {@link io.colossal4j.tensor.Storage#release()} on it only marks it unusable.
   */
  default Tensor allocateShared(Shape shape, DType dtype, Backend backend, MemoryCategory category) {
    Tensor t = Tensor.empty(shape, dtype, backend, category);
    backend.kernels().fill(t, 0);
    return t;
  }

  /** Whether {@code tensor} lives in a buffer from {@link #allocateShared} that this group reduces in place. */
  default boolean isShared(Tensor tensor) { return false; }

  default void allReduce(Tensor tensor, Reduction op) { allReduceAsync(tensor, op).await(); }

  default void reduceScatter(Tensor out, Tensor in, Reduction op) { reduceScatterAsync(out, in, op).await(); }

  default void allGather(Tensor out, Tensor in) { allGatherAsync(out, in).await(); }

  default void broadcast(Tensor tensor, int root) { broadcastAsync(tensor, root).await(); }

  default void reduce(Tensor tensor, int root, Reduction op) { reduceAsync(tensor, root, op).await(); }

  default void allToAll(Tensor out, Tensor in) { allToAllAsync(out, in).await(); }

  default void send(Tensor tensor, int peer, int tag) { sendAsync(tensor, peer, tag).await(); }

  default void recv(Tensor tensor, int peer, int tag) { recvAsync(tensor, peer, tag).await(); }

  default void barrier() { barrierAsync().await(); }

  /**
   * Closing the world group releases everything the job holds here (connections, the store, shared memory,
   * every subgroup); closing a subgroup releases nothing, as its resources belong to the world. Idempotent.
   */
  @Override void close();
}
