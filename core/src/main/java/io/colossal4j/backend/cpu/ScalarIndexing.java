package io.colossal4j.backend.cpu;

import static io.colossal4j.backend.cpu.CpuBackend.segment;

import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Elements;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * Reference loops for index_select, index_add, gather and scatter_add (PyTorch semantics). Index tensors are
 * i32 or i64 with any strides; every index is checked against the size of the dim it addresses before
 * any memory is touched through it, so a bad index is a {@link TensorException} naming the index, its
 * position, the dim and its size, never an access outside the tensor.
 *
 * <p>Selections (index_select, gather) copy element bytes, so they are exact for every dtype (i64 beyond
 * 2^53 included); accumulations (index_add, scatter_add) add in double and round once per addition.
 */
final class ScalarIndexing {
  private ScalarIndexing() {}

  // ------------------------------------------------------------- index_select / index_add
  static void indexSelect(Tensor x, int dim, Tensor index, Tensor out) {
    int d = x.shape().axis(dim);
    checkIndex("indexSelect", index, 1);
    sameDtype("indexSelect", x, out);
    int n = (int) index.numel();
    if (!out.shape().equals(x.shape().with(d, n)))
      throw new TensorException("indexSelect: output shape " + out.shape() + " should be " + x.shape().with(d, n));
    MemorySegment sx = segment(x), so = segment(out);
    int es = x.dtype().byteSize();
    Shape slice = x.shape().with(d, 1);
    for (int i = 0; i < n; i++) {
      long at = readIndex("indexSelect", index, i, x, d);
      Strided.forEach(slice, x.strides(), x.offset() + at * x.stride(d), out.strides(), out.offset() + i * out.stride(d),
          (a, b) -> MemorySegment.copy(sx, a * es, so, b * es, es));
    }
  }

  static void indexAdd(Tensor out, int dim, Tensor index, Tensor src) {
    int d = out.shape().axis(dim);
    checkIndex("indexAdd", index, 1);
    int n = (int) index.numel();
    if (!src.shape().equals(out.shape().with(d, n)))
      throw new TensorException("indexAdd: source shape " + src.shape() + " should be " + out.shape().with(d, n)
          + " (the output's shape with dim " + d + " of size index.numel() = " + n + ")");
    MemorySegment so = segment(out), ss = segment(src);
    Shape slice = out.shape().with(d, 1);
    for (int i = 0; i < n; i++) {
      long at = readIndex("indexAdd", index, i, out, d);
      Strided.forEach(slice, src.strides(), src.offset() + i * src.stride(d), out.strides(), out.offset() + at * out.stride(d),
          (a, b) -> ScalarKernels.set(so, out, b, ScalarKernels.get(so, out, b) + ScalarKernels.get(ss, src, a)));
    }
  }

  // ------------------------------------------------------------- gather / scatter_add
  static void gather(Tensor x, int dim, Tensor index, Tensor out) {
    int d = x.shape().axis(dim);
    checkIndex("gather", index, x.rank());
    checkFits("gather", index, x, d, "input");
    sameDtype("gather", x, out);
    if (!out.shape().equals(index.shape()))
      throw new TensorException("gather: output shape " + out.shape() + " should equal the index shape " + index.shape());
    MemorySegment sx = segment(x), so = segment(out), si = segment(index);
    int es = x.dtype().byteSize();
    long[] xs = x.strides();
    long step = xs[d];
    xs[d] = 0; // the dim's position comes from the index, not the walk
    long[] pos = {0};
    Strided.forEach(index.shape(), index.strides(), index.offset(), xs, x.offset(), out.strides(), out.offset(), (ii, xb, o) -> {
      long at = checked("gather", Elements.getLong(si, index.dtype(), ii * index.dtype().byteSize()), index, pos[0]++, x, d);
      MemorySegment.copy(sx, (xb + at * step) * es, so, o * es, es);
    });
  }

  static void scatterAdd(Tensor out, int dim, Tensor index, Tensor src) {
    int d = out.shape().axis(dim);
    checkIndex("scatterAdd", index, out.rank());
    checkFits("scatterAdd", index, out, d, "output");
    checkFits("scatterAdd", index, src, -1, "source");
    MemorySegment so = segment(out), ss = segment(src), si = segment(index);
    long[] os = out.strides();
    long step = os[d];
    os[d] = 0;
    long[] pos = {0};
    Strided.forEach(index.shape(), index.strides(), index.offset(), src.strides(), src.offset(), os, out.offset(), (ii, sb, ob) -> {
      long at = checked("scatterAdd", Elements.getLong(si, index.dtype(), ii * index.dtype().byteSize()), index, pos[0]++, out, d);
      long o = ob + at * step;
      ScalarKernels.set(so, out, o, ScalarKernels.get(so, out, o) + ScalarKernels.get(ss, src, sb));
    });
  }

  // ------------------------------------------------------------- validation
  /** The index tensor is i32 or i64; {@code rank} is the rank it must have (1 for index_select also accepts rank 0). */
  private static void checkIndex(String op, Tensor index, int rank) {
    if (index.dtype() != DType.I32 && index.dtype() != DType.I64)
      throw new TensorException(op + ": index must be i32 or i64, got " + index.dtype());
    boolean ok = index.rank() == rank || (rank == 1 && index.rank() == 0);
    if (!ok) throw new TensorException(op + ": index must have rank " + rank + ", got shape " + index.shape());
  }

  /** index.size(i) <= t.size(i) for every i except {@code dim} (PyTorch's rule for gather and scatter). */
  private static void checkFits(String op, Tensor index, Tensor t, int dim, String role) {
    if (t.rank() != index.rank())
      throw new TensorException(op + ": index " + index.shape() + " and " + role + " " + t.shape() + " must have the same rank");
    for (int i = 0; i < t.rank(); i++)
      if (i != dim && index.size(i) > t.size(i))
        throw new TensorException(op + ": index " + index.shape() + " is larger than " + role + " " + t.shape() + " in dim " + i
            + " (index sizes must be <= the " + role + "'s" + (dim >= 0 ? ", except in dim " + dim : "") + ")");
  }

  private static void sameDtype(String op, Tensor x, Tensor out) {
    if (x.dtype() != out.dtype()) throw new TensorException(op + ": output dtype " + out.dtype() + " differs from input dtype " + x.dtype());
  }

  /** The i-th element (row-major) of a rank-0/1 index, range-checked against t's {@code dim}. */
  private static long readIndex(String op, Tensor index, long i, Tensor t, int dim) {
    long off = index.rank() == 0 ? index.offset() : index.offset() + i * index.stride(0);
    return checked(op, Elements.getLong(segment(index), index.dtype(), off * index.dtype().byteSize()), index, i, t, dim);
  }

  private static long checked(String op, long value, Tensor index, long linear, Tensor t, int dim) {
    if (value >= 0 && value < t.size(dim)) return value;
    throw new TensorException(op + ": index " + value + " at position " + position(index.shape(), linear) + " is out of range for dim "
        + dim + " of size " + t.size(dim) + " (valid: 0.." + (t.size(dim) - 1) + "; tensor shape " + t.shape() + ")");
  }

  private static String position(Shape s, long linear) {
    int[] idx = new int[s.rank()];
    for (int i = s.rank() - 1; i >= 0; i--) {
      idx[i] = (int) (linear % s.dim(i));
      linear /= s.dim(i);
    }
    return Arrays.toString(idx);
  }
}
