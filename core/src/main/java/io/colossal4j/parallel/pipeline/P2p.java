package io.colossal4j.parallel.pipeline;

import io.colossal4j.backend.Backend;
import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.ops.Views;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;

/**
 * Activations and gradients between pipeline ranks. Every tensor travels as two messages: a fixed-size i64
 * header (dtype, rank, dims) and then the data, so the receiver allocates the right buffer without knowing
 * the shape in advance: micro-batches of different sizes (the last batch of an epoch) just work.
 *
 * <p>Tags: {@code ((micro · V + virtualStage) · 3 + direction) · 2 + kind}, where {@code virtualStage} is the
 * producing part's index (0..V-1, V = p·v), direction is forward, backward or evaluation and kind is
 * header or data. Distinct (micro-batch, chunk, direction, kind) never share a tag; the process group matches
 * messages of one tag in order, so the same tags are reused safely from step to step.
 *
 * <p>Sends do not wait for the receiver (the process group buffers messages at the receiving rank), so they are
 * issued synchronously: the process group then runs them on the caller's thread, which saves a hand-off to its
 * executor per message. Receives block. Used by one thread (the rank's schedule).
 */
final class P2p {
  static final int MAX_RANK = 8;
  private static final DType[] DTYPES = DType.values();
  private static final int DIRECTIONS = Direction.values().length;

  /** What a message carries: an activation (forward), a gradient (backward), or an evaluation activation. */
  enum Direction { FORWARD, BACKWARD, EVAL }

  private final ProcessGroup group;
  private final Backend backend;
  private final int virtualStages;

  P2p(ProcessGroup group, Backend backend, int virtualStages) {
    this.group = group;
    this.backend = backend;
    this.virtualStages = virtualStages;
  }

  static int tag(int micro, int virtualStage, Direction d, boolean data, int virtualStages) {
    long t = (((long) micro * virtualStages + virtualStage) * DIRECTIONS + d.ordinal()) * 2 + (data ? 1 : 0);
    if (t > Integer.MAX_VALUE) throw new IllegalArgumentException("p2p tag overflow: micro-batch " + micro + " of " + virtualStages + " virtual stages");
    return (int) t;
  }

  /** Sends {@code t} (any shape up to rank 8) to {@code peer}, produced by {@code virtualStage} for {@code micro}. */
  void send(Tensor t, int peer, int micro, int virtualStage, Direction d) {
    if (t.rank() > MAX_RANK) throw new IllegalArgumentException("pipeline p2p: tensors of rank up to " + MAX_RANK + ", got " + t.shape());
    long[] header = new long[2 + MAX_RANK];
    header[0] = t.dtype().ordinal();
    header[1] = t.rank();
    for (int i = 0; i < t.rank(); i++) header[2 + i] = t.size(i);
    Tensor h = Tensor.of(header, Shape.of(header.length), DType.I64, backend);
    Tensor data = t.isContiguous() ? t.detach() : Views.contiguous(t.detach());
    group.send(h, peer, tag(micro, virtualStage, d, false, virtualStages));
    group.send(data, peer, tag(micro, virtualStage, d, true, virtualStages));
  }

  /** Receives the tensor that {@code virtualStage} sent for {@code micro} from {@code peer}. */
  Tensor recv(int peer, int micro, int virtualStage, Direction d) {
    Tensor h = Tensor.empty(Shape.of(2 + MAX_RANK), DType.I64, backend);
    group.recv(h, peer, tag(micro, virtualStage, d, false, virtualStages));
    long[] header = h.toLongArray();
    int rank = (int) header[1];
    if (header[0] < 0 || header[0] >= DTYPES.length || rank < 0 || rank > MAX_RANK)
      throw new IllegalStateException("pipeline p2p: malformed header from rank " + peer + ": " + java.util.Arrays.toString(header));
    int[] dims = new int[rank];
    for (int i = 0; i < rank; i++) dims[i] = Math.toIntExact(header[2 + i]);
    Tensor t = Tensor.empty(Shape.of(dims), DTYPES[(int) header[0]], backend);
    group.recv(t, peer, tag(micro, virtualStage, d, true, virtualStages));
    return t;
  }
}
