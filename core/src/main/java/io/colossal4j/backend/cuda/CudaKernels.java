package io.colossal4j.backend.cuda;

import io.colossal4j.backend.BinaryOp;
import io.colossal4j.backend.AdamUpdate;
import io.colossal4j.backend.Conv2dSpec;
import io.colossal4j.backend.FusedAttention;
import io.colossal4j.backend.Kernels;
import io.colossal4j.backend.Pool2dSpec;
import io.colossal4j.backend.ReduceOp;
import io.colossal4j.backend.UnaryOp;
import io.colossal4j.backend.cuda.ffi.Driver;
import io.colossal4j.backend.cuda.ffi.Driver.Dim3;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SegmentAllocator;
import java.util.function.BiConsumer;

/**
 * The {@link Kernels} of a {@link CudaBackend}: every launch is queued on the backend's stream and returns
 * at once. Elementwise kernels take any strides and dtypes through a coalesced geometry (a contiguous
 * operand costs one multiply-add per element); reductions, softmax and layer norm live in
 * {@link CudaNormKernels}, matmul in {@link CudaMatmul}, convolution and pooling in {@link CudaSpatial}, indexing in
 * {@link CudaIndexing}, fused attention in {@link CudnnAttention} (cuDNN, our {@link CudaAttention} where cuDNN declines), AdamW in {@link CudaOptim}.
 *
 * <p>Before every launch the operands are checked (right backend, live storage, matching shapes), so a bad
 * call is an exception here rather than a fault on the device.
 */
final class CudaKernels implements Kernels, AutoCloseable {
  static final int THREADS = 256;

  private final CudaBackend backend;
  private final CudaNormKernels norm;
  private final CudaMatmul matmul;
  private final CudaSpatial spatial;
  private final CudaIndexing indexing;
  private final CudnnAttention attention;
  private final CudaOptim optim;
  private final CudaGeluKernels gelu;
  private final DeviceFaults faults;

  CudaKernels(CudaBackend backend) {
    this.backend = backend;
    this.norm = new CudaNormKernels(this);
    this.matmul = new CudaMatmul(this);
    this.spatial = new CudaSpatial(this);
    this.indexing = new CudaIndexing(this);
    this.attention = new CudnnAttention(this, new CudaAttention(this, CudaAttention.Variant.WIDE));
    this.optim = new CudaOptim(this);
    this.gelu = new CudaGeluKernels(this);
    this.faults = new DeviceFaults(backend);
  }

  CudaBackend backend() { return backend; }

  CudaNormKernels norm() { return norm; }

  // ------------------------------------------------------------- launch plumbing

  long ptr(Tensor t) { return backend.pointer(t); }

  static int dt(Tensor t) { return t.dtype().ordinal(); }

  /** True when some operand needs double arithmetic to match the reference (f64 and integer types). */
  static boolean wide(Tensor... ts) {
    for (Tensor t : ts) {
      if (t == null) continue;
      DType d = t.dtype();
      if (d == DType.F64 || d == DType.I32 || d == DType.I64) return true;
    }
    return false;
  }

  static String variant(String base, Tensor... ts) { return base + (wide(ts) ? "_d" : "_f"); }

  /** Blocks for a grid-stride loop over n items: enough to fill the device, at least one. */
  int blocks(long n, int threads) {
    long want = (n + threads - 1) / threads;
    return (int) Math.max(1, Math.min(want, (long) backend.multiprocessors() * 32));
  }

  /** Per-thread scratch for kernel arguments (geometry structs, the pointer array): no allocation per launch. */
  private static final ThreadLocal<MemorySegment> SCRATCH = ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(16384, 16));

  void launch(String kernel, Dim3 grid, Dim3 block, BiConsumer<SegmentAllocator, KernelArgs> fill) {
    launch(kernel, grid, block, 0, fill);
  }

  /** "N registers" (and the local memory, where a kernel spills) per thread of {@code kernel}: bench diagnostics. */
  String registers(String kernel) {
    backend.enter();
    long f = backend.module().function(kernel);
    var d = backend.driver();
    int regs = d.functionAttribute(f, Driver.FUNC_ATTR_NUM_REGS);
    int local = d.functionAttribute(f, Driver.FUNC_ATTR_LOCAL_SIZE_BYTES);
    return regs + " registers" + (local > 0 ? ", " + local + " B local" : "");
  }

  /** Functions whose dynamic shared memory limit was raised, and to how much. */
  private final java.util.concurrent.ConcurrentHashMap<String, Integer> sharedLimits = new java.util.concurrent.ConcurrentHashMap<>();

  /** A launch with {@code sharedBytes} of dynamic shared memory (the function's limit is raised once when above 48 KiB). */
  void launch(String kernel, Dim3 grid, Dim3 block, int sharedBytes, BiConsumer<SegmentAllocator, KernelArgs> fill) {
    backend.enter();
    long f = backend.module().function(kernel);
    if (sharedBytes > 48 * 1024 && sharedLimits.getOrDefault(kernel, 0) < sharedBytes) {
      backend.driver().setMaxDynamicSharedMemory(f, sharedBytes);
      sharedLimits.put(kernel, sharedBytes);
    }
    SegmentAllocator a = SegmentAllocator.slicingAllocator(SCRATCH.get());
    KernelArgs args = new KernelArgs(a);
    fill.accept(a, args);
    CudaProfiler prof = backend.profiler();
    if (prof != null) prof.begin(kernel);
    backend.driver().launch(f, grid, block, sharedBytes, backend.stream(), args.pointers());
    if (prof != null) prof.end();
  }

  static void sameShape(String op, Tensor a, Tensor out) {
    if (!a.shape().equals(out.shape()))
      throw new TensorException(op + ": operand shape " + a.shape() + " differs from output shape " + out.shape());
  }

  static CudaGeometry.Space space(Tensor... ops) {
    long[][] strides = new long[ops.length][];
    long[] offsets = new long[ops.length];
    for (int k = 0; k < ops.length; k++) {
      strides[k] = ops[k].strides();
      offsets[k] = ops[k].offset();
    }
    return CudaGeometry.coalesce(ops[ops.length - 1].shape(), strides, offsets);
  }

  // ------------------------------------------------------------- elementwise

  @Override public void fill(Tensor out, double value) {
    long p = ptr(out);
    if (out.numel() == 0) return;
    if (value == 0 && Double.doubleToRawLongBits(value) == 0 && out.isContiguous()) {
      backend.enter();
      int es = out.dtype().byteSize();
      CudaProfiler prof = backend.profiler();
      if (prof != null) prof.begin("memset");
      backend.driver().memsetBytes(p + out.offset() * es, (byte) 0, out.numel() * es, backend.stream());
      if (prof != null) prof.end();
      return;
    }
    CudaGeometry.Space s = space(out);
    launch(variant("fill", out), Dim3.of(blocks(out.numel(), THREADS)), Dim3.of(THREADS), (a, args) -> {
      args.struct(CudaGeometry.geom(a, s, "fill")).ptr(p).i32(dt(out));
      if (wide(out)) args.f64(value); else args.f32((float) value);
    });
  }

  @Override public void copy(Tensor src, Tensor dst) {
    sameShape("copy", src, dst);
    long ps = ptr(src), pd = ptr(dst);
    if (dst.numel() == 0) return;
    int es = src.dtype().byteSize();
    if (src.dtype() == dst.dtype() && src.isContiguous() && dst.isContiguous()) {
      backend.enter();
      CudaProfiler prof = backend.profiler();
      if (prof != null) prof.begin("memcpy d2d");
      backend.driver().copyDeviceToDevice(pd + dst.offset() * es, ps + src.offset() * es, dst.numel() * es, backend.stream());
      if (prof != null) prof.end();
      return;
    }
    if (src.dtype() != dst.dtype() && dense(src, dst)) {   // a contiguous bf16 <-> f32 conversion
      long n = dst.numel(), as = addr(src), ad = addr(dst);
      launch(denseName("ew_unary", src, dst), denseGrid(n), Dim3.of(THREADS), (a, args) -> args.i32(-1).i64(n).ptr(as).ptr(ad));
      return;
    }
    CudaGeometry.Space s = space(src, dst);
    Dim3 grid = Dim3.of(blocks(dst.numel(), THREADS));
    if (src.dtype() == dst.dtype()) {
      launch("copy_raw", grid, Dim3.of(THREADS), (a, args) -> args.struct(CudaGeometry.geom(a, s, "copy")).ptr(ps).ptr(pd).i32(es));
    } else {
      launch(variant("convert", src, dst), grid, Dim3.of(THREADS),
          (a, args) -> args.struct(CudaGeometry.geom(a, s, "copy")).ptr(ps).i32(dt(src)).ptr(pd).i32(dt(dst)));
    }
  }

  /**
   * Whether the dense kernels (elementwise_vec.cu, the dense softmax rows of norm_vec.cu) apply: every operand
   * contiguous, bf16 or f32, and 16-byte aligned (they move 8 elements at a time with 16-byte accesses).
   */
  boolean dense(Tensor... ts) {
    for (Tensor t : ts) {
      if (t.dtype() != DType.BF16 && t.dtype() != DType.F32) return false;
      if (!t.isContiguous() || addr(t) % 16 != 0) return false;
    }
    return true;
  }

  /** The dense kernels' name suffix: one letter per operand, b = bf16, f = f32 ("bbf": bf16, bf16, f32). */
  static String denseLetters(Tensor... ts) {
    StringBuilder b = new StringBuilder();
    for (Tensor t : ts) b.append(t.dtype() == DType.BF16 ? 'b' : 'f');
    return b.toString();
  }

  private static String denseName(String base, Tensor... ts) { return base + "_" + denseLetters(ts); }

  /** The device address of {@code t}'s first element (0 for null). */
  long addr(Tensor t) { return t == null ? 0 : ptr(t) + t.offset() * t.dtype().byteSize(); }

  /** Grid for a dense kernel over n elements, 8 per thread per step. */
  private Dim3 denseGrid(long n) { return Dim3.of(blocks((n + 7) / 8, THREADS)); }

  @Override public void unary(UnaryOp op, Tensor x, Tensor out) {
    sameShape(op.name(), x, out);
    long px = ptr(x), po = ptr(out);
    if (out.numel() == 0) return;
    if (dense(x, out)) {
      long n = out.numel(), ax = addr(x), ao = addr(out);
      launch(denseName("ew_unary", x, out), denseGrid(n), Dim3.of(THREADS), (a, args) -> args.i32(op.ordinal()).i64(n).ptr(ax).ptr(ao));
      return;
    }
    CudaGeometry.Space s = space(x, out);
    launch(variant("unary", x, out), Dim3.of(blocks(out.numel(), THREADS)), Dim3.of(THREADS),
        (a, args) -> args.struct(CudaGeometry.geom(a, s, op.name())).i32(op.ordinal()).ptr(px).i32(dt(x)).ptr(po).i32(dt(out)));
  }

  @Override public void binary(BinaryOp op, Tensor a, Tensor b, Tensor out) {
    sameShape(op.name(), a, out);
    sameShape(op.name(), b, out);
    long pa = ptr(a), pb = ptr(b), po = ptr(out);
    if (out.numel() == 0) return;
    if (dense(a, b, out)) {
      long n = out.numel(), aa = addr(a), ab = addr(b), ao = addr(out);
      launch(denseName("ew_binary", a, b, out), denseGrid(n), Dim3.of(THREADS), (ar, args) -> args.i32(op.ordinal()).i64(n).ptr(aa).ptr(ab).ptr(ao));
      return;
    }
    CudaGeometry.Space s = space(a, b, out);
    launch(variant("binary", a, b, out), Dim3.of(blocks(out.numel(), THREADS)), Dim3.of(THREADS), (ar, args) ->
        args.struct(CudaGeometry.geom(ar, s, op.name())).i32(op.ordinal()).ptr(pa).i32(dt(a)).ptr(pb).i32(dt(b)).ptr(po).i32(dt(out)));
  }

  @Override public void binaryScalar(BinaryOp op, Tensor a, double scalar, Tensor out) {
    sameShape(op.name(), a, out);
    long pa = ptr(a), po = ptr(out);
    if (out.numel() == 0) return;
    if (dense(a, out)) {
      long n = out.numel(), aa = addr(a), ao = addr(out);
      launch(denseName("ew_binary_scalar", a, out), denseGrid(n), Dim3.of(THREADS), (ar, args) -> args.i32(op.ordinal()).i64(n).ptr(aa).f32((float) scalar).ptr(ao));
      return;
    }
    CudaGeometry.Space s = space(a, out);
    launch(variant("binary_scalar", a, out), Dim3.of(blocks(out.numel(), THREADS)), Dim3.of(THREADS), (ar, args) ->
        args.struct(CudaGeometry.geom(ar, s, op.name())).i32(op.ordinal()).ptr(pa).i32(dt(a)).f64(scalar).ptr(po).i32(dt(out)));
  }

  @Override public void where(Tensor cond, Tensor a, Tensor b, Tensor out) {
    sameShape("where", cond, out);
    sameShape("where", a, out);
    sameShape("where", b, out);
    long pc = ptr(cond), pa = ptr(a), pb = ptr(b), po = ptr(out);
    if (out.numel() == 0) return;
    CudaGeometry.Space s = space(cond, a, b, out);
    launch(variant("where", cond, a, b, out), Dim3.of(blocks(out.numel(), THREADS)), Dim3.of(THREADS), (ar, args) ->
        args.struct(CudaGeometry.geom(ar, s, "where")).ptr(pc).i32(dt(cond)).ptr(pa).i32(dt(a)).ptr(pb).i32(dt(b)).ptr(po).i32(dt(out)));
  }

  @Override public void uniform(Tensor out, long seed, long offset) {
    if (!out.isContiguous()) throw new TensorException("uniform: output must be contiguous, got strides " + java.util.Arrays.toString(out.strides()));
    if (!out.dtype().isFloating()) throw new TensorException("uniform: output must be floating, got " + out.dtype());
    long po = ptr(out);
    long n = out.numel();
    if (n == 0) return;
    launch("uniform_kernel", Dim3.of(blocks((n + 3) / 4, THREADS)), Dim3.of(THREADS),
        (a, args) -> args.ptr(po).i32(dt(out)).i64(out.offset()).i64(n).i64(seed).i64(offset));
  }

  // ------------------------------------------------------------- reductions, normalisation, matmul

  @Override public void reduce(ReduceOp op, Tensor x, int[] dims, Tensor out) { norm.reduce(op, x, dims, out); }

  @Override public void matmul(Tensor a, Tensor b, Tensor out, boolean accumulate) { matmul.matmul(a, b, out, accumulate); }

  @Override public void matmulBias(Tensor a, Tensor b, Tensor bias, Tensor out) {
    if (!matmul.matmulBias(a, b, bias, out)) Kernels.super.matmulBias(a, b, bias, out);
  }

  /**
   * A fresh gradient (a leaf's, read by nothing before autograd installs it) is computed on the side stream, beside
   * the input gradient's GEMM that the caller queues next; the bias's column sums stay on the main stream (they only
   * read g, as the side GEMM does).
   */
  @Override public void linearWeightGrad(Tensor g, Tensor x, Tensor gw, Tensor gb) {
    if (!gw.isFreshGradient() || !backend.sideWorkOn() || !matmul.weightGradOnSide(g, x, gw)) {
      Kernels.super.linearWeightGrad(g, x, gw, gb);
      return;
    }
    if (gb != null) reduce(ReduceOp.SUM, g, new int[] {0}, gb.view(io.colossal4j.tensor.Shape.of(1, gb.size(0)), new long[] {0, gb.stride(0)}, gb.offset()));
  }

  @Override public boolean fusedGeluBiasGrad() { return true; }

  @Override public boolean geluBackwardBiasGrad(BinaryOp op, Tensor x, Tensor gy, Tensor gx, Tensor gb) { return gelu.geluBackwardBiasGrad(op, x, gy, gx, gb); }

  /** How many fused GELU backward + bias gradient passes ran. */
  long geluBiasGrads() { return gelu.fusedCount(); }

  @Override public boolean fusedLinearResidual() { return true; }

  @Override public boolean matmulBiasGelu(UnaryOp gelu, Tensor a, Tensor b, Tensor bias, Tensor pre, Tensor out) {
    return matmul.matmulBiasGelu(gelu, a, b, bias, pre, out);
  }

  @Override public boolean matmulResidual(Tensor a, Tensor b, Tensor bias, Tensor residual, Tensor out) {
    return matmul.matmulResidual(a, b, bias, residual, out);
  }

  /** Layer-norm backwards that added the pending input gradient in the kernel's own pass (for tests). */
  long accumulatingLayerNormBackwards() { return norm.accumulatingBackwards(); }

  /** GEMMs that took the fused residual path (tests check that a linear-add really ran fused). */
  long residualGemms() { return matmul.residualGemms(); }

  /** The GEMMs' plan cache and tuner (tests narrow its candidates). */
  CudaMatmul gemms() { return matmul; }

  @Override public boolean fusedCrossEntropy(Tensor logits, Tensor targets) { return norm.fusedCrossEntropy(logits, targets); }

  @Override public void crossEntropyForward(Tensor logits, Tensor targets, Tensor nll, Tensor lse) { norm.crossEntropyForward(logits, targets, nll, lse); }

  @Override public void crossEntropyBackward(Tensor logits, Tensor targets, Tensor lse, Tensor w, Tensor gx) {
    norm.crossEntropyBackward(logits, targets, lse, w, gx);
  }

  @Override public void softmax(Tensor x, int dim, boolean log, Tensor out) { norm.softmax(x, dim, log, out); }

  @Override public void softmaxBackward(Tensor y, Tensor gy, int dim, boolean log, Tensor gx) { norm.softmaxBackward(y, gy, dim, log, gx); }

  @Override public void layerNorm(Tensor x, Tensor w, Tensor b, double eps, Tensor y, Tensor mean, Tensor rstd) {
    norm.layerNorm(x, w, b, eps, y, mean, rstd);
  }

  @Override public void layerNormBackward(Tensor gy, Tensor x, Tensor w, Tensor mean, Tensor rstd, Tensor gx, Tensor gw, Tensor gb) {
    norm.layerNormBackward(gy, x, w, mean, rstd, null, gx, gw, gb);
  }

  @Override public void layerNormBackwardAccumulate(Tensor gy, Tensor x, Tensor w, Tensor mean, Tensor rstd, Tensor pending, Tensor gx,
                                                    Tensor gw, Tensor gb) {
    CudaKernels.sameShape("layerNormBackwardAccumulate", pending, x);
    norm.layerNormBackward(gy, x, w, mean, rstd, pending, gx, gw, gb);
  }

  // ------------------------------------------------------------- convolution, pooling, indexing

  @Override public void conv2d(Tensor x, Tensor w, Conv2dSpec spec, Tensor out) { spatial.conv2d(x, w, spec, out); }

  @Override public void conv2dBackwardInput(Tensor gy, Tensor w, Conv2dSpec spec, Tensor gx) { spatial.conv2dBackwardInput(gy, w, spec, gx); }

  @Override public void conv2dBackwardWeight(Tensor x, Tensor gy, Conv2dSpec spec, Tensor gw) { spatial.conv2dBackwardWeight(x, gy, spec, gw); }

  @Override public void maxPool2d(Tensor x, Pool2dSpec spec, Tensor out, Tensor indices) { spatial.maxPool2d(x, spec, out, indices); }

  @Override public void maxPool2dBackward(Tensor gy, Tensor indices, Tensor gx) { spatial.maxPool2dBackward(gy, indices, gx); }

  @Override public void avgPool2d(Tensor x, Pool2dSpec spec, Tensor out) { spatial.avgPool2d(x, spec, out); }

  @Override public void avgPool2dBackward(Tensor gy, Pool2dSpec spec, Tensor gx) { spatial.avgPool2dBackward(gy, spec, gx); }

  @Override public void indexSelect(Tensor x, int dim, Tensor index, Tensor out) { indexing.indexSelect(x, dim, index, out); }

  @Override public void indexAdd(Tensor out, int dim, Tensor index, Tensor src) { indexing.indexAdd(out, dim, index, src); }

  @Override public void gather(Tensor x, int dim, Tensor index, Tensor out) { indexing.gather(x, dim, index, out); }

  @Override public void scatterAdd(Tensor out, int dim, Tensor index, Tensor src) { indexing.scatterAdd(out, dim, index, src); }

  // ------------------------------------------------------------- fused kernels

  @Override public java.util.Optional<FusedAttention> fusedAttention() { return java.util.Optional.of(attention); }

  @Override public void adamStep(java.util.List<AdamUpdate.Param> params, AdamUpdate update) { optim.adamStep(params, update); }

  @Override public void sumOfSquares(java.util.List<Tensor> ts, Tensor slots) {
    if (!optim.sumOfSquares(ts, slots)) Kernels.super.sumOfSquares(ts, slots);
  }

  // ------------------------------------------------------------- device-side faults

  /** The fault words of the kernels that check values only the device sees (indices). */
  DeviceFaults faults() { return faults; }

  /** The device address of {@code op}'s fault slot (flag, value, position, limit), allocating it on first use. */
  long faultWord(String op) { return faults.slot(op); }

  @Override public void close() {
    attention.close();
    matmul.close();
    faults.close();
  }

}
