package io.colossal4j.ops;

import io.colossal4j.autograd.Autograd;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;

/**
 * Index-driven selection and accumulation (PyTorch semantics), differentiable in the data operands; the
 * index tensors (i32 or i64, any strides) are never differentiable. Index values are range-checked by the
 * kernels: an out-of-range index is a {@link TensorException} naming the index, its position, the dim and
 * its size. Negative indices are not wrapped (PyTorch rejects them here too).
 *
 * <p>Gradients: index_select and embedding scatter back through index_add (repeated indices accumulate);
 * gather scatters back through scatter_add and vice versa.
 */
public final class Indexing {
  private Indexing() {}

  /** x.index_select(dim, index): index is rank 0 or 1; the result has size(dim) = index.numel(). */
  public static Tensor indexSelect(Tensor x, int dim, Tensor index) {
    int d = axis("indexSelect", x, dim);
    requireIndex("indexSelect", index);
    if (index.rank() > 1) throw new TensorException("indexSelect: index must have rank 0 or 1, got shape " + index.shape());
    OpSupport.sameBackend("indexSelect", x, index);
    Tensor out = OpSupport.empty(x.shape().with(d, (int) index.numel()), x.dtype(), x.backend());
    x.backend().kernels().indexSelect(x, d, index, out);
    Shape in = x.shape();
    return Autograd.recordSaving("index_select", out, Autograd.saving(index), g -> new Tensor[] {indexAddInto(zeros(in, g), d, index, g)}, x);
  }

  /**
   * x.index_add(dim, index, src): a copy of x with src's slices added at the indexed positions along dim
   * (src has x's shape with size(dim) = index.numel()). Differentiable in x and src.
   */
  public static Tensor indexAdd(Tensor x, int dim, Tensor index, Tensor src) {
    int d = axis("indexAdd", x, dim);
    requireIndex("indexAdd", index);
    OpSupport.sameBackend("indexAdd", x, src);
    if (src.dtype() != x.dtype()) throw new TensorException("indexAdd: source dtype " + src.dtype() + " differs from input dtype " + x.dtype());
    Tensor out = indexAddInto(copy(x), d, index, src);
    return Autograd.recordSaving("index_add", out, Autograd.saving(index), g -> new Tensor[] {g, indexSelect(g, d, index)}, x, src);
  }

  /**
   * Rows of {@code weight} [V, D] picked by {@code ids} (i32 or i64, any shape): the result has shape
   * ids.shape + [D]. The weight's gradient accumulates the output gradient of every occurrence of an id
   * (index_add), so repeated ids sum, as in PyTorch's embedding without padding_idx or max_norm.
   */
  public static Tensor embedding(Tensor weight, Tensor ids) {
    if (weight.rank() != 2) throw new TensorException("embedding: weight must be [num_embeddings, dim], got " + weight.shape());
    requireIndex("embedding", ids);
    OpSupport.sameBackend("embedding", weight, ids);
    int n = (int) ids.numel(), dimE = weight.size(1);
    Tensor flat = flatIds(ids);
    Tensor rows = OpSupport.empty(Shape.of(n, dimE), weight.dtype(), weight.backend());
    try {
      weight.backend().kernels().indexSelect(weight, 0, flat, rows);
    } catch (TensorException e) {
      throw new TensorException("embedding of " + weight.size(0) + " rows: id out of range: " + e.getMessage());
    }
    Shape vocab = weight.shape();
    Autograd.recordSaving("embedding", rows, Autograd.saving(flat), g -> new Tensor[] {indexAddInto(zeros(vocab, g), 0, flat, g)}, weight);
    int[] outDims = java.util.Arrays.copyOf(ids.shape().toArray(), ids.rank() + 1);
    outDims[ids.rank()] = dimE;
    return Views.reshape(rows, outDims);
  }

  /** x.gather(dim, index): out[..i..] = x[.., index[..i..], ..]; index has x's rank and sizes <= x's outside dim. */
  public static Tensor gather(Tensor x, int dim, Tensor index) {
    int d = axis("gather", x, dim);
    requireIndex("gather", index);
    OpSupport.sameBackend("gather", x, index);
    Tensor out = OpSupport.empty(index.shape(), x.dtype(), x.backend());
    x.backend().kernels().gather(x, d, index, out);
    Shape in = x.shape();
    return Autograd.recordSaving("gather", out, Autograd.saving(index), g -> {
      Tensor gx = zeros(in, g);
      g.backend().kernels().scatterAdd(gx, d, index, g);
      return new Tensor[] {gx};
    }, x);
  }

  /**
   * x.scatter_add(dim, index, src): a copy of x with out[.., index[..i..], ..] += src[..i..] for every
   * position i of index (index sizes <= src's in every dim, <= x's outside dim). Differentiable in x and in
   * src; src's gradient is gather(g, dim, index) on the positions index covers and zero elsewhere (PyTorch
   * implements it only for src.shape == index.shape, where the two agree).
   */
  public static Tensor scatterAdd(Tensor x, int dim, Tensor index, Tensor src) {
    int d = axis("scatterAdd", x, dim);
    requireIndex("scatterAdd", index);
    OpSupport.sameBackend("scatterAdd", x, src);
    if (src.dtype() != x.dtype()) throw new TensorException("scatterAdd: source dtype " + src.dtype() + " differs from input dtype " + x.dtype());
    Tensor out = copy(x);
    x.backend().kernels().scatterAdd(out, d, index, src);
    Shape srcShape = src.shape();
    return Autograd.recordSaving("scatter_add", out, Autograd.saving(index), g -> new Tensor[] {g, gatherGradient(g, d, index, srcShape)}, x, src);
  }

  // ------------------------------------------------------------- helpers (no autograd)
  private static Tensor gatherGradient(Tensor g, int d, Tensor index, Shape srcShape) {
    Tensor picked = OpSupport.empty(index.shape(), g.dtype(), g.backend());
    g.backend().kernels().gather(g, d, index, picked);
    if (srcShape.equals(index.shape())) return picked;
    Tensor gs = zeros(srcShape, g);
    g.backend().kernels().copy(picked, gs.view(index.shape(), gs.strides(), gs.offset()));
    return gs;
  }

  private static Tensor indexAddInto(Tensor out, int d, Tensor index, Tensor src) {
    out.backend().kernels().indexAdd(out, d, index, src);
    return out;
  }

  /** ids as a contiguous rank-1 tensor (a view when already contiguous). */
  private static Tensor flatIds(Tensor ids) {
    Tensor c = ids;
    if (!ids.isContiguous()) {
      c = OpSupport.emptyLike(ids);
      ids.backend().kernels().copy(ids, c);
    }
    return c.view(Shape.of((int) ids.numel()), new long[] {1}, c.offset());
  }

  private static Tensor zeros(Shape shape, Tensor like) { return Tensor.zeros(shape, like.dtype(), like.backend()); }

  private static Tensor copy(Tensor x) {
    Tensor out = OpSupport.emptyLike(x);
    x.backend().kernels().copy(x, out);
    return out;
  }

  private static int axis(String op, Tensor x, int dim) {
    return OpSupport.normalizeDims(op, x.shape(), dim)[0];
  }

  private static void requireIndex(String op, Tensor index) {
    if (index.dtype() != DType.I32 && index.dtype() != DType.I64)
      throw new TensorException(op + ": index must be i32 or i64, got " + index.dtype() + " (shape " + index.shape() + ")");
  }
}
