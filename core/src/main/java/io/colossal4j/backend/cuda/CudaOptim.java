package io.colossal4j.backend.cuda;

import static io.colossal4j.backend.cuda.CudaKernels.dt;

import io.colossal4j.backend.AdamUpdate;
import io.colossal4j.backend.cuda.ffi.Driver.Dim3;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.MemoryCategory;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SegmentAllocator;
import java.lang.foreign.ValueLayout;
import java.util.List;

/** Fused optimizer steps on CUDA (host side of optim.cu): Adam/AdamW, {@link #BATCH} parameters per launch. */
final class CudaOptim {
  /** Parameters per launch (ADAM_MAX in optim.cu). */
  static final int BATCH = 16;
  private static final long STRUCT_BYTES = BATCH * 8L * 5 + BATCH * 4L * 4;

  private final CudaKernels k;

  CudaOptim(CudaKernels kernels) { this.k = kernels; }

  void adamStep(List<AdamUpdate.Param> params, AdamUpdate u) {
    for (AdamUpdate.Param p : params)
      for (Tensor t : new Tensor[] {p.param(), p.grad(), p.expAvg(), p.expAvgSq()}) {
        k.ptr(t);
        if (!t.isContiguous()) throw new TensorException("adamStep: tensors must be contiguous, got " + t.shape() + " strides " + java.util.Arrays.toString(t.strides()));
      }
    double keep = u.decoupled() ? 1 - u.lr() * u.weightDecay() : 1;
    double ib1 = 1 / u.biasCorrection1(), ib2 = 1 / u.biasCorrection2();
    for (int from = 0; from < params.size(); from += BATCH) {
      List<AdamUpdate.Param> chunk = params.subList(from, Math.min(params.size(), from + BATCH));
      long largest = 0;
      boolean wide = false;
      for (AdamUpdate.Param p : chunk) {
        largest = Math.max(largest, p.param().numel());
        wide |= p.param().dtype() == DType.F64 || p.expAvg().dtype() == DType.F64;
      }
      if (largest == 0) continue;
      int blocks = (int) Math.min((largest + CudaKernels.THREADS - 1) / CudaKernels.THREADS, (long) k.backend().multiprocessors() * 8);
      k.launch(wide ? "adam_step_d" : "adam_step_f", Dim3.of(blocks, chunk.size()), Dim3.of(CudaKernels.THREADS), (a, args) ->
          args.struct(batch(a, chunk)).f64(u.lr()).f64(u.beta1()).f64(u.beta2()).f64(1 - u.beta1()).f64(1 - u.beta2()).f64(u.eps()).f64(u.weightDecay())
              .i32(u.decoupled() ? 1 : 0).f64(keep).f64(ib1).f64(ib2));
    }
  }

  /**
   * {@link io.colossal4j.backend.Kernels#sumOfSquares} with {@link #BATCH} tensors per launch, when every tensor is
   * contiguous bf16, f16 or f32 on this backend (false otherwise: the caller composes it).
   */
  boolean sumOfSquares(List<Tensor> ts, Tensor slots) {
    if (slots.dtype() != DType.F64 || !slots.isContiguous() || slots.numel() != ts.size() || slots.backend() != k.backend()) return false;
    long largest = 0;
    for (Tensor t : ts) {
      if (t.backend() != k.backend() || !t.isContiguous() || !(t.dtype() == DType.BF16 || t.dtype() == DType.F16 || t.dtype() == DType.F32)) return false;
      largest = Math.max(largest, t.numel());
    }
    if (ts.isEmpty()) return true;
    int blocks = (int) Math.max(1, Math.min((largest + 8L * CudaKernels.THREADS - 1) / (8L * CudaKernels.THREADS), (long) k.backend().multiprocessors() * 4));
    Tensor partials = Tensor.empty(Shape.of(BATCH * blocks), DType.F64, k.backend(), MemoryCategory.TEMPORARY);
    long pp = k.ptr(partials), ps = k.ptr(slots) + slots.offset() * 8;
    for (int from = 0; from < ts.size(); from += BATCH) {
      List<Tensor> chunk = ts.subList(from, Math.min(ts.size(), from + BATCH));
      long slot = ps + 8L * from;
      k.launch("sumsq_multi", Dim3.of(blocks, chunk.size()), Dim3.of(CudaKernels.THREADS), (a, args) -> args.struct(sumsqBatch(a, chunk)).ptr(pp));
      int warps = CudaKernels.THREADS / 32;
      k.launch("sumsq_finish", Dim3.of((chunk.size() + warps - 1) / warps), Dim3.of(CudaKernels.THREADS), (a, args) ->
          args.ptr(pp).i32(blocks).ptr(slot).i32(chunk.size()));
    }
    partials.storage().release();
    return true;
  }

  /** struct SumsqBatch: numel[16], p[16], dt[16]. */
  private MemorySegment sumsqBatch(SegmentAllocator a, List<Tensor> chunk) {
    MemorySegment s = a.allocate(8L * BATCH * 2 + 4L * BATCH, 8).fill((byte) 0);
    for (int i = 0; i < chunk.size(); i++) {
      Tensor t = chunk.get(i);
      s.set(ValueLayout.JAVA_LONG, 8L * i, t.numel());
      s.set(ValueLayout.JAVA_LONG, 8L * BATCH + 8L * i, k.ptr(t) + t.offset() * t.dtype().byteSize());
      s.set(ValueLayout.JAVA_INT, 16L * BATCH + 4L * i, dt(t));
    }
    return s;
  }

  /** struct AdamBatch: numel[16], p[16], g[16], m[16], v[16], then the four dtype arrays. */
  private MemorySegment batch(SegmentAllocator a, List<AdamUpdate.Param> chunk) {
    MemorySegment s = a.allocate(STRUCT_BYTES, 8).fill((byte) 0);
    for (int i = 0; i < chunk.size(); i++) {
      AdamUpdate.Param p = chunk.get(i);
      Tensor[] ts = {p.param(), p.grad(), p.expAvg(), p.expAvgSq()};
      s.set(ValueLayout.JAVA_LONG, 8L * i, p.param().numel());
      for (int j = 0; j < 4; j++) {
        Tensor t = ts[j];
        s.set(ValueLayout.JAVA_LONG, 8L * BATCH * (1 + j) + 8L * i, k.ptr(t) + t.offset() * t.dtype().byteSize());
        s.set(ValueLayout.JAVA_INT, 8L * BATCH * 5 + 4L * BATCH * j + 4L * i, dt(t));
      }
    }
    return s;
  }
}
