package io.colossal4j.backend.cpu.simd;

import io.colossal4j.backend.BinaryOp;
import io.colossal4j.backend.Conv2dSpec;
import io.colossal4j.backend.ReduceOp;
import io.colossal4j.backend.UnaryOp;
import io.colossal4j.backend.cpu.CpuParallel;
import io.colossal4j.backend.cpu.ScalarKernels;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Tensor;

/**
 * The fast CPU kernels: Java Vector API loops, width-generic with a masked tail, multithreaded on the
 * backend's pool. Each override takes the f32 layouts it specialises and hands everything else (other
 * dtypes, unusual strides, ops without a vector form) to the reference implementation it extends, which is
 * the same math; {@code KernelConformanceTest} checks every method against that reference.
 *
 * <p>GEMM is our own Vector API kernel ({@link Gemm}), not a native BLAS, decided by measurement: side by
 * side in one process on the 2-core AVX-512 development machine it ran 1.5–1.7× OpenBLAS 0.3.31 (the build
 * Maven Central serves) and over 2× PyTorch CPU at 1024³ and 2048³ (docs/benchmarks/cpu.md), so a 20 MB
 * native dependency would buy nothing in core. There is no native fallback of any kind.
 *
 * <p>One float species: every kernel uses {@code FloatVector.SPECIES_PREFERRED} and no other float shape. The JIT
 * inlines the Vector API's calls on a vector whose class it cannot yet prove (a loop-carried accumulator, a helper's
 * result), such as {@code vspecies()} inside {@code FloatVector.intoMemorySegment}, from the type profile of that
 * bytecode in the JDK, which every caller in the JVM shares. Once a second class (Float256Vector) had reached it,
 * the site was bimorphic, the species a phi of two constants, the store intrinsic failed for want of a constant
 * vector class, and the GEMM micro-kernel boxed every accumulator (150–280 MB a training step) in about half of
 * all JVMs, depending on the order in which the JIT profiled and compiled them (docs/benchmarks/ddp.md, 29 Nov).
 */
public class SimdKernels extends ScalarKernels {
  protected final CpuParallel parallel;
  private final AttentionKernel attention;
  /** Per-task heap buffers of the kernels below, lent and returned, so steady-state steps make no garbage arrays. */
  private final ScratchPool scratch = new ScratchPool();

  public SimdKernels(CpuParallel parallel) {
    this.parallel = parallel;
    this.attention = new AttentionKernel(parallel, scratch);
  }

  private static boolean f32(Tensor... ts) {
    for (Tensor t : ts) if (t != null && t.dtype() != DType.F32) return false;
    return true;
  }

  // ------------------------------------------------------------- elementwise
  @Override public void copy(Tensor src, Tensor dst) {
    checkSameShape("copy", src, dst);
    if (f32(src, dst) && PermuteCopy.copy(parallel, src, dst)) return;
    super.copy(src, dst);
  }

  @Override public void unary(UnaryOp op, Tensor x, Tensor out) {
    checkSameShape(op.name(), x, out);
    if (f32(x, out) && Elementwise.supports(op) && Elementwise.unary(parallel, op, x, out)) return;
    super.unary(op, x, out);
  }

  @Override public void binary(BinaryOp op, Tensor a, Tensor b, Tensor out) {
    checkSameShape(op.name(), a, out);
    checkSameShape(op.name(), b, out);
    if (f32(a, b, out) && Elementwise.supports(op) && Elementwise.binary(parallel, op, a, b, out)) return;
    super.binary(op, a, b, out);
  }

  @Override public void binaryScalar(BinaryOp op, Tensor a, double s, Tensor out) {
    checkSameShape(op.name(), a, out);
    if (f32(a, out) && Elementwise.binaryScalar(parallel, op, a, (float) s, out)) return;
    super.binaryScalar(op, a, s, out);
  }

  // ------------------------------------------------------------- reductions
  @Override public void reduce(ReduceOp op, Tensor x, int[] dims, Tensor out) {
    if (op == ReduceOp.SUM && x.dtype() == DType.F32 && out.dtype() == DType.F64 && out.numel() == 1 && dims.length == x.rank()
        && x.isContiguous() && x.numel() > 0) {   // the gradient norm's Σ of squares: f32 values summed in double
      DoubleSum.sum(parallel, scratch, x, out);
      return;
    }
    if (f32(x, out) && Reductions.supports(op) && x.isContiguous() && out.isContiguous() && dims.length > 0 && x.numel() > 0) {
      int r = x.rank();
      boolean trailing = dims[dims.length - 1] == r - 1 && dims[0] == r - dims.length;
      boolean leading = dims[0] == 0 && dims[dims.length - 1] == dims.length - 1;
      for (int i = 1; i < dims.length; i++) if (dims[i] != dims[i - 1] + 1) trailing = leading = false;
      if (trailing) {
        long inner = x.shape().numel(dims[0], r);
        if (inner <= Integer.MAX_VALUE) { Reductions.trailing(parallel, op, x, x.numel() / inner, (int) inner, out); return; }
      } else if (leading) {
        long outer = x.shape().numel(0, dims.length), inner = x.numel() / outer;
        if (inner <= Integer.MAX_VALUE) { Reductions.leading(parallel, op, x, outer, (int) inner, out); return; }
      } else if (outerAndInner(dims, r)) {
        int a = 0;
        while (dims[a] == a) a++;
        int b = dims[a];
        long outer = x.shape().numel(0, a), keep = x.shape().numel(a, b), inner = x.shape().numel(b, r);
        if (keep <= Integer.MAX_VALUE && inner <= Integer.MAX_VALUE) {
          Reductions.outerAndInner(parallel, op, x, outer, (int) keep, (int) inner, out);
          return;
        }
      }
    }
    super.reduce(op, x, dims, out);
  }

  /** dims (sorted, distinct) are a non-empty leading run 0..a-1 and a non-empty trailing run b..r-1, a < b. */
  private static boolean outerAndInner(int[] dims, int r) {
    int a = 0;
    while (a < dims.length && dims[a] == a) a++;
    if (a == 0 || a == dims.length) return false;
    for (int i = a; i < dims.length; i++) if (dims[i] != r - (dims.length - i)) return false;
    return dims[a] > a;
  }

  // ------------------------------------------------------------- matmul
  @Override public void matmul(Tensor a, Tensor b, Tensor out, boolean accumulate) {
    if (f32(a, b, out) && Matmul.run(parallel, a, b, out, accumulate)) return;
    super.matmul(a, b, out, accumulate);
  }

  /** Linear layers over many rows: the bias is the skinny GEMM's starting value (no separate pass). */
  @Override public void matmulBias(Tensor a, Tensor b, Tensor bias, Tensor out) {
    if (f32(a, b, bias, out) && Matmul.bias(parallel, a, b, bias, out)) return;
    super.matmulBias(a, b, bias, out);
  }

  /** gw = gᵀ·x and gb = Σ_rows g in one pass where the widths are small ({@link SkinnyGemm#weightGrad}). */
  @Override public void linearWeightGrad(Tensor g, Tensor x, Tensor gw, Tensor gb) {
    if (f32(g, x, gw, gb) && Matmul.weightGrad(parallel, g, x, gw, gb)) return;
    super.linearWeightGrad(g, x, gw, gb);
  }

  // ------------------------------------------------------------- optimizer
  @Override public boolean fastAdamStep() { return true; }

  @Override public boolean fusedBatchNorm() { return true; }

  @Override public void batchNormTrain(Tensor x, Tensor w, Tensor b, double eps, Tensor y, Tensor mean, Tensor var) {
    if (f32(x, w, b, y, mean, var) && x.isContiguous() && y.isContiguous()) BatchNormKernel.forward(parallel, x, w, b, eps, y, mean, var);
    else super.batchNormTrain(x, w, b, eps, y, mean, var);
  }

  @Override public void batchNormTrainBackward(Tensor gy, Tensor x, Tensor w, Tensor mean, Tensor var, double eps,
                                               Tensor gx, Tensor gw, Tensor gb) {
    if (f32(gy, x, w, mean, var, gx, gw, gb) && gy.isContiguous() && x.isContiguous() && gx.isContiguous())
      BatchNormKernel.backward(parallel, gy, x, w, mean, var, eps, gx, gw, gb);
    else super.batchNormTrainBackward(gy, x, w, mean, var, eps, gx, gw, gb);
  }

  @Override public void adamStep(java.util.List<io.colossal4j.backend.AdamUpdate.Param> params, io.colossal4j.backend.AdamUpdate update) {
    for (var prm : params) {
      if (AdamKernel.supports(prm)) AdamKernel.step(parallel, prm, update);
      else super.adamStep(java.util.List.of(prm), update);
    }
  }

  // ------------------------------------------------------------- attention

  /** Short-sequence f32 attention without bias or dropout ({@link AttentionKernel}); the op composes the rest. */
  @Override public java.util.Optional<io.colossal4j.backend.FusedAttention> fusedAttention() { return java.util.Optional.of(attention); }

  // ------------------------------------------------------------- softmax and layer norm
  @Override public void softmax(Tensor x, int dim, boolean log, Tensor out) {
    if (f32(x, out) && lastUnit(x, dim) && lastUnit(out, dim)) { RowOps.softmax(parallel, x, log, out); return; }
    super.softmax(x, dim, log, out);
  }

  @Override public void softmaxBackward(Tensor y, Tensor gy, int dim, boolean log, Tensor gx) {
    if (f32(y, gy, gx) && lastUnit(y, dim) && lastUnit(gy, dim) && lastUnit(gx, dim)) {
      RowOps.softmaxBackward(parallel, y, gy, log, gx);
      return;
    }
    super.softmaxBackward(y, gy, dim, log, gx);
  }

  /** dim is the last one and has unit stride (rows may sit at any strides). */
  private static boolean lastUnit(Tensor t, int dim) {
    return t.rank() > 0 && t.shape().axis(dim) == t.rank() - 1 && (t.stride(-1) == 1 || t.size(-1) == 1);
  }

  /** The f32 layer-norm kernels (over the last dim and over NCHW channels) apply to these forward operands. */
  private static boolean layerNormFast(Tensor x, Tensor w, Tensor b, Tensor y, Tensor mean, Tensor rstd) {
    return f32(x, w, b, y, mean, rstd) && x.isContiguous() && y.isContiguous() && unit(w) && unit(b) && unit(mean) && unit(rstd);
  }

  /** ... and to these backward operands. */
  private static boolean layerNormBackwardFast(Tensor gy, Tensor x, Tensor w, Tensor mean, Tensor rstd, Tensor gx, Tensor gw, Tensor gb) {
    return f32(gy, x, w, mean, rstd, gx, gw, gb) && gy.isContiguous() && x.isContiguous() && gx.isContiguous()
        && unit(w) && unit(mean) && unit(rstd) && unit(gw) && unit(gb);
  }

  @Override public void layerNorm(Tensor x, Tensor w, Tensor b, double eps, Tensor y, Tensor mean, Tensor rstd) {
    if (layerNormFast(x, w, b, y, mean, rstd)) {
      LayerNormKernel.forward(parallel, x, w, b, (float) eps, y, mean, rstd);
      return;
    }
    super.layerNorm(x, w, b, eps, y, mean, rstd);
  }

  @Override public void layerNormBackward(Tensor gy, Tensor x, Tensor w, Tensor mean, Tensor rstd, Tensor gx, Tensor gw, Tensor gb) {
    if (layerNormBackwardFast(gy, x, w, mean, rstd, gx, gw, gb)) {
      LayerNormKernel.backward(parallel, scratch, gy, x, w, mean, rstd, gx, gw, gb);
      return;
    }
    super.layerNormBackward(gy, x, w, mean, rstd, gx, gw, gb);
  }

  @Override public boolean fastLayerNormChannels() { return true; }

  @Override public void layerNormChannels(Tensor x, Tensor w, Tensor b, double eps, Tensor y, Tensor mean, Tensor rstd) {
    if (layerNormFast(x, w, b, y, mean, rstd)) {
      LayerNormChannels.forward(parallel, x, w, b, (float) eps, y, mean, rstd);
      return;
    }
    super.layerNormChannels(x, w, b, eps, y, mean, rstd);
  }

  @Override public void layerNormChannelsBackward(Tensor gy, Tensor x, Tensor w, Tensor mean, Tensor rstd, Tensor gx, Tensor gw, Tensor gb) {
    if (layerNormBackwardFast(gy, x, w, mean, rstd, gx, gw, gb)) {
      LayerNormChannelsBackward.run(parallel, gy, x, w, mean, rstd, gx, gw, gb);
      return;
    }
    super.layerNormChannelsBackward(gy, x, w, mean, rstd, gx, gw, gb);
  }

  /** Null, or contiguous (unit stride over its elements). */
  private static boolean unit(Tensor t) { return t == null || t.isContiguous(); }

  // ------------------------------------------------------------- convolution
  @Override public void conv2d(Tensor x, Tensor w, Conv2dSpec spec, Tensor out) {
    if (f32(x, w, out) && x.isContiguous() && w.isContiguous() && out.isContiguous()) { ConvKernel.forward(parallel, x, w, spec, out); return; }
    super.conv2d(x, w, spec, out);
  }

  @Override public void conv2dBackwardInput(Tensor gy, Tensor w, Conv2dSpec spec, Tensor gx) {
    if (f32(gy, w, gx) && gy.isContiguous() && w.isContiguous() && gx.isContiguous()) { ConvKernel.backwardInput(parallel, gy, w, spec, gx); return; }
    super.conv2dBackwardInput(gy, w, spec, gx);
  }

  @Override public void conv2dBackwardWeight(Tensor x, Tensor gy, Conv2dSpec spec, Tensor gw) {
    if (f32(x, gy, gw) && x.isContiguous() && gy.isContiguous() && gw.isContiguous()) { ConvKernel.backwardWeight(parallel, scratch, x, gy, spec, gw); return; }
    super.conv2dBackwardWeight(x, gy, spec, gw);
  }
}
