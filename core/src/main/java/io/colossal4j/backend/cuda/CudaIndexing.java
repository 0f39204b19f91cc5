package io.colossal4j.backend.cuda;

import static io.colossal4j.backend.cuda.CudaKernels.dt;

import io.colossal4j.backend.cuda.ffi.Driver.Dim3;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;

/**
 * index_select, index_add, gather and scatter_add on CUDA (host side of indexing.cu), with the reference's
 * shape rules (PyTorch's). Any strides on every operand. Selections copy element bytes (exact for every
 * dtype); additions are atomic in the output's dtype (16-bit types by compare-and-swap), so their order, and
 * for repeated indices the rounding, may differ from the reference by an ulp per addition.
 *
 * <p>Index values live on the device, so they are range-checked there: a bad index is skipped and recorded,
 * and the next synchronisation of the backend (a host copy, {@code synchronize()}) throws a
 * {@link TensorException} naming the op, the index, its position and the valid range.
 */
final class CudaIndexing {
  /** The walk's modes, as indexing.cu numbers them. */
  enum Mode { INDEX_SELECT, INDEX_ADD, GATHER, SCATTER_ADD }

  private final CudaKernels k;

  CudaIndexing(CudaKernels kernels) { this.k = kernels; }

  private static void checkIndex(String op, Tensor index, int rank) {
    if (index.dtype() != DType.I32 && index.dtype() != DType.I64)
      throw new TensorException(op + ": index must be i32 or i64, got " + index.dtype());
    if (!(index.rank() == rank || (rank == 1 && index.rank() == 0)))
      throw new TensorException(op + ": index must have rank " + rank + ", got shape " + index.shape());
  }

  private static void checkFits(String op, Tensor index, Tensor t, int dim, String role) {
    if (t.rank() != index.rank())
      throw new TensorException(op + ": index " + index.shape() + " and " + role + " " + t.shape() + " must have the same rank");
    for (int i = 0; i < t.rank(); i++)
      if (i != dim && index.size(i) > t.size(i))
        throw new TensorException(op + ": index " + index.shape() + " is larger than " + role + " " + t.shape() + " in dim " + i);
  }

  private static void sameDtype(String op, Tensor x, Tensor out) {
    if (x.dtype() != out.dtype()) throw new TensorException(op + ": output dtype " + out.dtype() + " differs from input dtype " + x.dtype());
  }

  void indexSelect(Tensor x, int dim, Tensor index, Tensor out) {
    int d = x.shape().axis(dim);
    checkIndex("indexSelect", index, 1);
    sameDtype("indexSelect", x, out);
    int n = (int) index.numel();
    if (!out.shape().equals(x.shape().with(d, n)))
      throw new TensorException("indexSelect: output shape " + out.shape() + " should be " + x.shape().with(d, n));
    walk(Mode.INDEX_SELECT, out.shape(), d, x, out, index, null);
  }

  void indexAdd(Tensor out, int dim, Tensor index, Tensor src) {
    int d = out.shape().axis(dim);
    checkIndex("indexAdd", index, 1);
    int n = (int) index.numel();
    if (!src.shape().equals(out.shape().with(d, n)))
      throw new TensorException("indexAdd: source shape " + src.shape() + " should be " + out.shape().with(d, n));
    walk(Mode.INDEX_ADD, src.shape(), d, out, src, index, null);
  }

  void gather(Tensor x, int dim, Tensor index, Tensor out) {
    int d = x.shape().axis(dim);
    checkIndex("gather", index, x.rank());
    checkFits("gather", index, x, d, "input");
    sameDtype("gather", x, out);
    if (!out.shape().equals(index.shape()))
      throw new TensorException("gather: output shape " + out.shape() + " should equal the index shape " + index.shape());
    walk(Mode.GATHER, index.shape(), d, x, out, index, index);
  }

  void scatterAdd(Tensor out, int dim, Tensor index, Tensor src) {
    int d = out.shape().axis(dim);
    checkIndex("scatterAdd", index, out.rank());
    checkFits("scatterAdd", index, out, d, "output");
    checkFits("scatterAdd", index, src, -1, "source");
    walk(Mode.SCATTER_ADD, index.shape(), d, out, src, index, index);
  }

  /**
   * One launch over {@code space}: t0 is the indexed tensor (its stride along dim comes from the index), t1
   * the other operand, walked along {@code space}; {@code walked} is the index when it is walked too (gather,
   * scatter_add), null when it is addressed by the coordinate along dim (index_select, index_add).
   */
  private void walk(Mode mode, Shape space, int dim, Tensor t0, Tensor t1, Tensor index, Tensor walked) {
    long p0 = k.ptr(t0), p1 = k.ptr(t1), pi = k.ptr(index);
    if (space.numel() == 0) return;
    int r = space.rank();
    if (r > CudaGeometry.MAX_RANK) throw new TensorException(mode + " on CUDA supports at most " + CudaGeometry.MAX_RANK + " dims, got " + space);
    long[] s0 = t0.strides();
    long step = r == 0 ? 0 : s0[dim];
    if (r > 0) s0[dim] = 0;
    long[] s2 = walked == null ? new long[r] : walked.strides();
    CudaGeometry.Space g = new CudaGeometry.Space(space.numel(), space.toArray(), new long[][] {s0, t1.strides(), s2},
        new long[] {t0.offset(), t1.offset(), walked == null ? 0 : walked.offset()});
    long limit = r == 0 ? 1 : t0.size(dim);
    long istride = index.rank() == 0 ? 0 : index.stride(0);
    long fault = k.faultWord(name(mode));
    int es = t0.dtype().byteSize();
    k.launch("index_walk", Dim3.of(k.blocks(space.numel(), CudaKernels.THREADS)), Dim3.of(CudaKernels.THREADS), (a, args) ->
        args.struct(CudaGeometry.geom(a, g, name(mode))).i32(mode.ordinal()).i32(dim).i64(step).i64(limit)
            .ptr(pi).i32(dt(index)).i64(istride).i64(index.offset()).ptr(p0).i32(dt(t0)).ptr(p1).i32(dt(t1)).i32(es).ptr(fault));
  }

  static String name(Mode m) {
    return switch (m) {
      case INDEX_SELECT -> "indexSelect";
      case INDEX_ADD -> "indexAdd";
      case GATHER -> "gather";
      case SCATTER_ADD -> "scatterAdd";
    };
  }
}
