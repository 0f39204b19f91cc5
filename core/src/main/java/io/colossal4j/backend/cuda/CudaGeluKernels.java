package io.colossal4j.backend.cuda;


import io.colossal4j.backend.BinaryOp;
import io.colossal4j.backend.cuda.ffi.Driver.Dim3;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.MemoryCategory;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Host side of the GELU backward fused with a linear layer's bias gradient (elementwise_vec.cu's gelu_bwd_colsum_*,
 * then norm.cu's wb_final_wide_f over the per-chunk partial sums). Used by the backend's one submitting thread.
 */
final class CudaGeluKernels {
  private static final int THREADS = 128;   // 128 threads × 8 columns: 1024 columns per block (ViT-H's 5120 = 5 blocks)
  private final CudaKernels k;
  private final AtomicLong fused = new AtomicLong();

  CudaGeluKernels(CudaKernels k) { this.k = k; }

  /** How many fused GELU backward + bias gradient passes ran (tests prove the fused path taken). */
  long fusedCount() { return fused.get(); }

  /**
   * See {@link io.colossal4j.backend.Kernels#geluBackwardBiasGrad}: fused for x, gy, gx dense of one dtype (bf16 or
   * f32: the instantiations bbb and fff), at least 64 rows of n columns with n % 8 == 0; gb of n elements, any
   * floating dtype and stride (the final pass stores through its geometry). Otherwise false, nothing written.
   */
  boolean geluBackwardBiasGrad(BinaryOp op, Tensor x, Tensor gy, Tensor gx, Tensor gb) {
    if (op != BinaryOp.GELU_BACKWARD && op != BinaryOp.GELU_TANH_BACKWARD) return false;
    if (x.rank() < 1 || !x.shape().equals(gy.shape()) || !x.shape().equals(gx.shape())) return false;
    DType t = gx.dtype();
    if (x.dtype() != t || gy.dtype() != t || !k.dense(x, gy, gx)) return false;
    int n = x.size(-1);
    long rows = n == 0 ? 0 : x.numel() / n;
    if (n % 8 != 0 || rows < 64 || gb.rank() != 1 || gb.size(0) != n || !gb.dtype().isFloating() || gb.backend() != k.backend()) return false;
    int colBlocks = (n / 8 + THREADS - 1) / THREADS;
    // about 8 blocks of 4 warps per SM: enough warps in flight for this arithmetic-heavy pass; at least 16 rows
    // a chunk, at most 1024 chunks (the partials, chunks × n f32, stay a few MB against the ~200 MB of x, gy, gx)
    long want = Math.max(1, (long) k.backend().multiprocessors() * 8 / colBlocks);
    int chunks = (int) Math.max(1, Math.min(Math.min(want, rows / 16), 1024));
    long rowsPerChunk = (rows + chunks - 1) / chunks;
    Tensor part = Tensor.empty(Shape.of(chunks, n), DType.F32, k.backend(), MemoryCategory.TEMPORARY);
    long px = k.addr(x), pg = k.addr(gy), po = k.addr(gx), pp = k.ptr(part);
    String name = "gelu_bwd_colsum_" + CudaKernels.denseLetters(x, gy, gx);
    k.launch(name, Dim3.of(colBlocks, chunks), Dim3.of(THREADS), (a, args) ->
        args.i32(op.ordinal()).i64(rows).i32(n).i64(rowsPerChunk).ptr(px).ptr(pg).ptr(po).ptr(pp));
    k.launch("wb_final_wide_f", Dim3.of((n + 31) / 32), Dim3.of(256), (a, args) ->
        args.i32(n).i32(chunks).ptr(pp).ptr(pp).struct(k.norm().targ(a, null)).struct(k.norm().targ(a, gb)));
    part.storage().release();
    fused.incrementAndGet();
    return true;
  }
}
