package io.colossal4j.parallel.tensor;

import io.colossal4j.autograd.Autograd;
import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.distributed.Reduction;
import io.colossal4j.ops.OpSupport;
import io.colossal4j.ops.Views;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;

/**
 * Differentiable communication at the edges of a tensor-parallel region (Megatron-LM, Shoeybi et al. 2019,
 * section 3). A region is the part of the network where each rank of the tp group holds a slice of the
 * activations; outside it, every rank holds the same full activations.
 *
 * <ul>
 *   <li>{@link #copyToRegion} (Megatron's f): identity forward, all-reduce of the gradient backward. Every
 *   rank's slice of the region consumed the same input, so the input's gradient is the sum of the ranks'.</li>
 *   <li>{@link #reduceFromRegion} (Megatron's g, f's conjugate): all-reduce forward, identity backward.</li>
 *   <li>{@link #gatherFromRegion}: all-gather along the last dim forward, this rank's chunk backward.</li>
 *   <li>{@link #scatterToRegion}: this rank's chunk of the last dim forward, all-gather backward.</li>
 * </ul>
 *
 * <p>Every op is recorded with {@link Autograd#record}, so its backward communicates when the backward pass
 * reaches it. The backward engine visits nodes in reverse creation order, and every rank of a tp group
 * builds the same graph, so the backward collectives are issued in the same order on every rank (the
 * {@link ProcessGroup} contract). Results of all-reduces are bit-identical on every member, which is what
 * keeps the activations outside a region, and so the replicated parameters, identical across ranks.
 * A group of size 1 makes every op the identity (no communication, no node).
 *
 * <p>Thread-safety: each rank calls these from its own thread with its own group; no shared state.
 */
public final class TpComm {
  private TpComm() {}

  /** Identity forward; the gradient is all-reduced (summed) over {@code tp}. */
  public static Tensor copyToRegion(Tensor x, ProcessGroup tp) {
    if (tp.size() == 1) return x;
    Tensor out = x.view(x.shape(), x.strides(), x.offset());   // a new node over the same storage
    return Autograd.record("tp_copy_to_region", out, g -> new Tensor[] {allReduced(g, tp)}, x);
  }

  /** All-reduce (sum) over {@code tp} forward; the gradient passes through unchanged. */
  public static Tensor reduceFromRegion(Tensor x, ProcessGroup tp) {
    if (tp.size() == 1) return x;
    return Autograd.record("tp_reduce_from_region", allReduced(x, tp), g -> new Tensor[] {g}, x);
  }

  /**
   * [..., n] on each rank to [..., size·n]: the ranks' tensors concatenated along the last dim in rank
   * order. Backward: this rank's n columns of the gradient.
   */
  public static Tensor gatherFromRegion(Tensor x, ProcessGroup tp) {
    if (tp.size() == 1) return x;
    requireRank("gatherFromRegion", x);
    int n = x.size(-1);
    return Autograd.record("tp_gather_from_region", allGatherLastDim(x, tp), g -> new Tensor[] {ownChunk(g, tp, n)}, x);
  }

  /**
   * [..., size·n] to this rank's chunk [..., n] of the last dim (the input is the same on every rank).
   * Backward: the ranks' chunk gradients all-gathered back to [..., size·n].
   */
  public static Tensor scatterToRegion(Tensor x, ProcessGroup tp) {
    if (tp.size() == 1) return x;
    requireRank("scatterToRegion", x);
    int full = x.size(-1);
    if (full % tp.size() != 0)
      throw new TensorException("scatterToRegion: last dim " + full + " of " + x.shape() + " is not divisible by tp = " + tp.size() + " (group " + tp.name() + ")");
    int n = full / tp.size();
    return Autograd.record("tp_scatter_to_region", ownChunk(x, tp, n), g -> new Tensor[] {allGatherLastDim(g, tp)}, x);
  }

  // ------------------------------------------------------------- collectives on detached copies (no autograd)
  /** A fresh contiguous tensor holding the sum of the members' {@code x}. */
  static Tensor allReduced(Tensor x, ProcessGroup tp) { return allReduced(x, tp, Reduction.SUM); }

  /** A fresh contiguous tensor holding {@code op} over the members' {@code x}. */
  static Tensor allReduced(Tensor x, ProcessGroup tp, Reduction op) {
    Tensor out = contiguousCopy(x);
    tp.allReduce(out, op);
    return out;
  }

  /** The members' [..., n] tensors as one contiguous [..., size·n], rank r at columns [r·n, (r+1)·n). */
  static Tensor allGatherLastDim(Tensor x, ProcessGroup tp) {
    int p = tp.size(), n = x.size(-1);
    int rows = (int) (x.numel() / Math.max(1, n));
    Tensor mine = contiguousCopy(x);
    Tensor stacked = OpSupport.empty(Shape.of(p, rows, n), x.dtype(), x.backend());   // rank-major, as all-gather lays it out
    tp.allGather(stacked, mine);
    Tensor byRow = Views.contiguous(Views.permute(stacked, 1, 0, 2));             // [rows, p, n]
    return Views.reshape(byRow, x.shape().with(x.rank() - 1, p * n).toArray());
  }

  /** This rank's columns [rank·n, (rank+1)·n) of the last dim, contiguous. */
  static Tensor ownChunk(Tensor x, ProcessGroup tp, int n) {
    Tensor d = x.detach();
    return contiguousCopy(Views.narrow(d, -1, tp.rank() * n, n));
  }

  static Tensor contiguousCopy(Tensor x) {
    Tensor out = OpSupport.empty(x.shape(), x.dtype(), x.backend());
    x.backend().kernels().copy(x, out);
    return out;
  }

  private static void requireRank(String op, Tensor x) {
    if (x.rank() < 1) throw new TensorException(op + ": needs a tensor of rank >= 1, got a scalar");
  }
}
