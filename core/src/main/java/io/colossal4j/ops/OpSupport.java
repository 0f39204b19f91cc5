package io.colossal4j.ops;

import io.colossal4j.backend.Backend;
import io.colossal4j.backend.ReduceOp;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;
import java.util.ArrayList;
import java.util.List;

/** Shared plumbing for op definitions: output allocation, operand checks, broadcasting and its backward. */
public final class OpSupport {
  private OpSupport() {}

  public static Tensor empty(Shape shape, DType dtype, Backend backend) {
    return Tensor.empty(shape, dtype, backend);
  }

  public static Tensor emptyLike(Tensor t) { return Tensor.empty(t.shape(), t.dtype(), t.backend()); }

  /**
   * The output buffer of a backward rule's gradient for input {@code param}: when param is a leaf of that dtype and
   * shape without a gradient yet (the first contribution of a step after the gradients were released), a gradient
   * buffer marked fresh, which autograd installs as the leaf's gradient without a copy; when its gradient is zeroed
   * lazily (the CPU's kept buffers, data parallelism's bucket views), that gradient itself, claimed, so the rule's
   * write is the accumulation; otherwise an ordinary output. The rule must write all of it (overwrite, not add) and
   * hand the result to {@code param} alone.
   */
  public static Tensor gradientFor(Tensor param, Shape shape, DType dtype, Backend backend) {
    if (param.isLeaf() && param.requiresGrad() && param.dtype() == dtype && param.shape().equals(shape) && param.backend() == backend) {
      if (!param.hasGrad()) return Tensor.empty(shape, dtype, backend, io.colossal4j.tensor.MemoryCategory.GRADIENT).markFreshGradient();
      Tensor zeroed = param.claimGradForOverwrite(dtype);
      if (zeroed != null) return zeroed;
    }
    return Tensor.empty(shape, dtype, backend);
  }

  /** Both operands on one backend, or an error naming the op and both devices. */
  public static Backend sameBackend(String op, Tensor a, Tensor b) {
    if (a.backend() != b.backend())
      throw new TensorException(op + ": operands are on different backends (" + a.backend().name() + " on " + a.device()
          + " and " + b.backend().name() + " on " + b.device() + "); move one with Ops.to(...)");
    return a.backend();
  }

  public static void requireFloating(String op, Tensor t) {
    if (!t.dtype().isFloating()) throw new TensorException(op + ": needs a floating tensor, got " + t.dtype());
  }

  /** A view of t expanded (stride 0) to {@code shape}, which must be a broadcast of t's shape. No autograd. */
  public static Tensor broadcastView(Tensor t, Shape shape) {
    if (t.shape().equals(shape)) return t;
    int r = shape.rank(), tr = t.rank();
    if (tr > r) throw new TensorException("cannot broadcast " + t.shape() + " to " + shape);
    long[] st = new long[r];
    long[] ts = t.strides();
    for (int i = 0; i < r; i++) {
      int ti = i - (r - tr);
      if (ti < 0) { st[i] = 0; continue; }
      int size = t.size(ti);
      if (size == shape.dim(i)) st[i] = ts[ti];
      else if (size == 1) st[i] = 0;
      else throw new TensorException("cannot broadcast " + t.shape() + " to " + shape + " (dim " + i + ": " + size + " vs " + shape.dim(i) + ")");
    }
    return t.view(shape, st, t.offset());
  }

  /** Sums a broadcast gradient back to {@code shape} (the backward of broadcasting). No autograd. */
  public static Tensor sumToShape(Tensor g, Shape shape) {
    if (g.shape().equals(shape)) return g;
    int r = g.rank(), tr = shape.rank();
    List<Integer> dims = new ArrayList<>();
    for (int i = 0; i < r; i++) {
      int ti = i - (r - tr);
      if (ti < 0 || (shape.dim(ti) == 1 && g.size(i) != 1)) dims.add(i);
    }
    int[] d = dims.stream().mapToInt(Integer::intValue).toArray();
    Tensor reduced = OpSupport.empty(keepdimShape(g.shape(), d), g.dtype(), g.backend());
    if (d.length > 0) g.backend().kernels().reduce(ReduceOp.SUM, g, d, reduced);
    else g.backend().kernels().copy(g, reduced);
    return reduced.view(shape, shape.contiguousStrides(), reduced.offset());
  }

  public static Shape keepdimShape(Shape s, int[] dims) {
    int[] out = s.toArray();
    for (int d : dims) out[d] = 1;
    return Shape.of(out);
  }

  /** Normalises, sorts and de-duplicates dims against a rank, naming the op on a bad dim. */
  public static int[] normalizeDims(String op, Shape s, int... dims) {
    if (dims.length == 0) {
      int[] all = new int[s.rank()];
      for (int i = 0; i < all.length; i++) all[i] = i;
      return all;
    }
    java.util.TreeSet<Integer> set = new java.util.TreeSet<>();
    for (int d : dims) {
      try {
        set.add(s.axis(d));
      } catch (TensorException e) {
        throw new TensorException(op + ": " + e.getMessage());
      }
    }
    return set.stream().mapToInt(Integer::intValue).toArray();
  }
}
