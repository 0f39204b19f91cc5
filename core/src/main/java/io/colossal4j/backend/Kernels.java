package io.colossal4j.backend;

import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Tensor;

/**
 * The primitives a backend implements. Ops (in {@code ops}) validate shapes, allocate outputs and record
 * autograd; kernels only compute. Contract for every method:
 * <ul>
 *   <li>all tensors belong to this backend; outputs are allocated by the caller with the documented shape;</li>
 *   <li>inputs may have any strides (views, expanded broadcast dims with stride 0) unless stated;</li>
 *   <li>an output may alias an input only where stated (elementwise ops allow {@code out == a});</li>
 *   <li>floating math accumulates in at least f32 (f64 for f64 tensors).</li>
 * </ul>
 * The scalar CPU kernels are the reference implementation; every other implementation is tested against them.
 */
public interface Kernels {
  // ------------------------------------------------------------- elementwise
  void fill(Tensor out, double value);

  /** dst[i] = src[i] with dtype conversion; same shape, any strides on both sides. */
  void copy(Tensor src, Tensor dst);

  void unary(UnaryOp op, Tensor x, Tensor out);

  /** out = op(a, b); a and b are already broadcast (expanded) to out's shape. Comparisons write 0/1 in out's dtype. */
  void binary(BinaryOp op, Tensor a, Tensor b, Tensor out);

  /** out = op(a, s). */
  void binaryScalar(BinaryOp op, Tensor a, double s, Tensor out);

  /** out = cond != 0 ? a : b; all three broadcast to out's shape. */
  void where(Tensor cond, Tensor a, Tensor b, Tensor out);

  // ------------------------------------------------------------- reductions
  /**
   * Reduces x over {@code dims} (sorted, distinct) into out, whose shape is x's with those dims set to 1
   * (keepdim). ARGMAX/ARGMIN take one dim and write i64 (the first index on ties, as PyTorch).
   */
  void reduce(ReduceOp op, Tensor x, int[] dims, Tensor out);

  // ------------------------------------------------------------- linear algebra
  /**
   * out[..., M, N] = a[..., M, K] @ b[..., K, N]; batch dims equal (already broadcast). Any strides, so
   * a transposed operand is a transposed view. {@code accumulate} adds into out instead of overwriting.
   */
  void matmul(Tensor a, Tensor b, Tensor out, boolean accumulate);

  /**
   * out[M, N] = a[M, K] @ b[K, N] + bias[N] (a linear layer's forward). The default writes the bias into out
   * and accumulates the product onto it; a backend may fuse the bias into the GEMM (cuBLASLt's epilogue).
   */
  default void matmulBias(Tensor a, Tensor b, Tensor bias, Tensor out) {
    copy(bias.view(out.shape(), new long[] {0, bias.stride(0)}, bias.offset()), out);
    matmul(a, b, out, true);
  }

  /**
   * pre[M, N] = a[M, K]·b[K, N] + bias[N] and out = gelu(pre) in one pass (a GEMM whose epilogue applies the GELU
   * and also stores its input), when the backend has such a kernel for this GELU and these operands; false, nothing
   * written, otherwise (the caller composes matmulBias and the GELU). The output is GELU of the f32 sum rounded once,
   * so it may differ from the composite, which rounds pre first, by an ulp of out's type.
   */
  default boolean matmulBiasGelu(UnaryOp gelu, Tensor a, Tensor b, Tensor bias, Tensor pre, Tensor out) { return false; }

  /**
   * Whether {@link #matmulResidual} is a fused kernel that {@code LinAlg.linearAdd} should try before composing
   * linear and add (the reference, which keeps the CPU's numbers those of the two ops, rounding included).
   */
  default boolean fusedLinearResidual() { return false; }

  /**
   * out[M, N] = residual[M, N] + a[M, K] @ b[K, N] (+ bias[N] when non-null) in one pass over out, the product
   * and bias rounded together with the residual (once). residual has out's shape and is not out (no overlap);
   * returns false, having written nothing, when this backend does not fuse these operands (dtypes, layouts,
   * alignment), and the op then composes linear and add.
   */
  default boolean matmulResidual(Tensor a, Tensor b, Tensor bias, Tensor residual, Tensor out) { return false; }

  /**
   * Whether {@link #geluBackwardBiasGrad} may fuse (CUDA); false here, so the op composes the GELU backward and a
   * column sum (the reference, which keeps the CPU's numbers those of the two ops).
   */
  default boolean fusedGeluBiasGrad() { return false; }

  /**
   * gx = GELU'(x)·gy (op GELU_BACKWARD or GELU_TANH_BACKWARD, exactly as {@link #binary}) and gb [n] = the column
   * sums of gx as stored, over x's leading dims folded into rows ([rows, n], n = x's last dim), in one pass; x, gy
   * and gx of one shape. Returns false, having written nothing, when this backend does not fuse these operands
   * (dtypes, layouts, sizes); the op then composes {@link #binary} and {@link #reduce}.
   */
  default boolean geluBackwardBiasGrad(BinaryOp op, Tensor x, Tensor gy, Tensor gx, Tensor gb) { return false; }

  /**
   * The weight and bias gradients of a linear layer y = x·wᵀ + b over rows: gw [out, in] = gᵀ·x and, when gb is
   * non-null, gb [out] = the column sums of g (reduce's keepdim layout, [1, out], viewed onto gb); g [rows, out], x [rows, in]. Outputs are overwritten. The default
   * composes a matmul and a reduction; a backend may compute both in one pass. When gw is a
   * {@linkplain io.colossal4j.tensor.Tensor#isFreshGradient fresh gradient} (it becomes a leaf's gradient and no op
   * reads it before then), a backend may compute it beside its main stream: readers of leaf gradients join first
   * ({@link io.colossal4j.backend.Backend#joinSideWork}).
   */
  default void linearWeightGrad(Tensor g, Tensor x, Tensor gw, Tensor gb) {
    matmul(g.view(io.colossal4j.tensor.Shape.of(g.size(1), g.size(0)), new long[] {g.stride(1), g.stride(0)}, g.offset()), x, gw, false);
    if (gb != null) reduce(ReduceOp.SUM, g, new int[] {0}, gb.view(io.colossal4j.tensor.Shape.of(1, gb.size(0)), new long[] {0, gb.stride(0)}, gb.offset()));
  }

  // ------------------------------------------------------------- normalisation
  /** Softmax (or log-softmax) along {@code dim}. */
  void softmax(Tensor x, int dim, boolean log, Tensor out);

  /** Gradient of softmax given its output y and the output gradient gy. */
  void softmaxBackward(Tensor y, Tensor gy, int dim, boolean log, Tensor gx);

  /**
   * Layer norm over the last dimension of contiguous x viewed as [rows, n]. w and b ([n]) may be null.
   * Writes y, and per-row mean and rstd ([rows], f32; f64 when x is f64) for the backward.
   */
  void layerNorm(Tensor x, Tensor w, Tensor b, double eps, Tensor y, Tensor mean, Tensor rstd);

  /** gx, and (when non-null) gw and gb, from the saved mean/rstd. gw/gb are overwritten, not accumulated. */
  void layerNormBackward(Tensor gy, Tensor x, Tensor w, Tensor mean, Tensor rstd, Tensor gx, Tensor gw, Tensor gb);

  /**
   * {@link #layerNormBackward} with a gradient accumulated into gx: gx = pending + dx, dx being the input gradient
   * layerNormBackward would write, rounded to gx's dtype before the add, so the result equals layerNormBackward
   * followed by {@code binary(ADD, pending, dx, out)} bit for bit (what the autograd engine's separate sum computes).
   * pending has x's shape and gx's dtype, any strides, and does not overlap gx. This default is that composition;
   * a backend may fuse the add into the backward's own pass (one extra read of pending instead of a pass that reads
   * two tensors and writes one).
   */
  default void layerNormBackwardAccumulate(Tensor gy, Tensor x, Tensor w, Tensor mean, Tensor rstd, Tensor pending, Tensor gx,
                                           Tensor gw, Tensor gb) {
    layerNormBackward(gy, x, w, mean, rstd, gx, gw, gb);
    binary(BinaryOp.ADD, pending, gx, gx);
  }

  /**
   * Whether {@link #layerNormChannels} and {@link #layerNormChannelsBackward} are fast kernels that the
   * channels-first layer norm op should prefer to moving channels last and back (the reference: that composition).
   */
  default boolean fastLayerNormChannels() { return false; }

  /**
   * Layer norm over dim 1 (channels) of contiguous x [N, C, ...] (ConvNeXt's channels-first LayerNorm2d): for
   * each n and trailing position p, over the C values x[n, :, p], the mean, the biased variance and
   * y = (x − mean)·rstd·w + b (w, b: [C] or null). y is contiguous like x; mean and rstd are contiguous [N·P]
   * (P = the product of the trailing dims) in (n, p) order: the row order of {@link #layerNorm} on x moved to
   * channels-last, so {@link #layerNormBackward} applies there with the same statistics.
   */
  default void layerNormChannels(Tensor x, Tensor w, Tensor b, double eps, Tensor y, Tensor mean, Tensor rstd) {
    throw new UnsupportedOperationException("layerNormChannels is not implemented by " + getClass().getSimpleName());
  }

  /**
   * The backward of {@link #layerNormChannels} from its saved mean and rstd, all tensors contiguous in x's
   * layout: per (n, p), with x̂ = (x − mean)·rstd and h = gy·w (gy where w is null), gx = rstd·(h − mean_C(h) −
   * x̂·mean_C(h·x̂)); gw = Σ gy·x̂ and gb = Σ gy over n and p ([C], overwritten, each may be null).
   */
  default void layerNormChannelsBackward(Tensor gy, Tensor x, Tensor w, Tensor mean, Tensor rstd, Tensor gx, Tensor gw, Tensor gb) {
    throw new UnsupportedOperationException("layerNormChannelsBackward is not implemented by " + getClass().getSimpleName());
  }

  // ------------------------------------------------------------- convolution and pooling
  /**
   * out[N, Cout, Ho, Wo] = conv(x[N, Cin, H, W], w[Cout, Cin/groups, kH, kW]) (cross-correlation, no bias);
   * contiguous x and w. Here and in the convolution and pooling kernels below, the ops pass contiguous
   * operands and contiguous outputs, and outputs are overwritten, not accumulated.
   */
  void conv2d(Tensor x, Tensor w, Conv2dSpec spec, Tensor out);

  /** gx[N, Cin, H, W] = the gradient of conv2d with respect to x, given gy [N, Cout, Ho, Wo]. */
  void conv2dBackwardInput(Tensor gy, Tensor w, Conv2dSpec spec, Tensor gx);

  /** gw[Cout, Cin/groups, kH, kW] = the gradient of conv2d with respect to w, summed over the batch. */
  void conv2dBackwardWeight(Tensor x, Tensor gy, Conv2dSpec spec, Tensor gw);

  /**
   * Max pool; {@code indices} (i64, out's shape) receives the flat h*W+w index of each max within its plane
   * (first on ties; a NaN wins, as PyTorch).
   */
  void maxPool2d(Tensor x, Pool2dSpec spec, Tensor out, Tensor indices);

  /** gx (zeroed by the kernel) receives gy at the saved indices. */
  void maxPool2dBackward(Tensor gy, Tensor indices, Tensor gx);

  void avgPool2d(Tensor x, Pool2dSpec spec, Tensor out);

  void avgPool2dBackward(Tensor gy, Pool2dSpec spec, Tensor gx);

  // ------------------------------------------------------------- indexing
  /** out = x.index_select(dim, index); index is i32 or i64 of rank 1; out is x's shape with size(dim) = index.numel(). */
  void indexSelect(Tensor x, int dim, Tensor index, Tensor out);

  /** out.index_add_(dim, index, src): out[.., index[i], ..] += src[.., i, ..]. */
  void indexAdd(Tensor out, int dim, Tensor index, Tensor src);

  /** out = x.gather(dim, index); index has out's shape. */
  void gather(Tensor x, int dim, Tensor index, Tensor out);

  /** out.scatter_add_(dim, index, src): out[.., index[i..], ..] += src[i..]. */
  void scatterAdd(Tensor out, int dim, Tensor index, Tensor src);

  // ------------------------------------------------------------- randomness
  /**
   * Fills out (contiguous, floating) with uniform [0, 1) numbers from the counter-based Philox4x32-10
   * generator: element i uses counter (offset + i/4), lane i%4, under key {@code seed}. The same
   * (seed, offset) gives the same numbers on every backend, which is what makes dropout reproducible
   * across devices, parallel layouts and activation recomputation.
   */
  void uniform(Tensor out, long seed, long offset);

  // ------------------------------------------------------------- optional fused kernels
  /**
   * A fused attention kernel, if this backend has one. The default says it is absent, and
   * {@code ops.Attention} then composes matmul, softmax and dropout (the reference).
   */
  default java.util.Optional<FusedAttention> fusedAttention() { return java.util.Optional.empty(); }

  /**
   * Writes into {@code slots[i]} (a contiguous f64 vector on this backend with one slot per tensor) the sum of
   * squares of all elements of {@code ts.get(i)}: squares formed in f32 (f64 for f64 tensors), each tensor summed
   * on this backend (no host synchronisation here: the gradient norm of a step reads one number afterwards). The
   * default composes a square and a full reduction per tensor.
   */
  default void sumOfSquares(java.util.List<Tensor> ts, Tensor slots) {
    if (slots.dtype() != DType.F64 || !slots.isContiguous() || slots.numel() != ts.size())
      throw new io.colossal4j.tensor.TensorException("sumOfSquares: slots must be a contiguous f64 vector of " + ts.size() + " elements, got "
          + slots.shape() + " " + slots.dtype());
    for (int i = 0; i < ts.size(); i++) {
      Tensor t = ts.get(i);
      Tensor sq = Tensor.empty(t.shape(), t.dtype() == DType.F64 ? DType.F64 : DType.F32, t.backend(), io.colossal4j.tensor.MemoryCategory.TEMPORARY);
      unary(UnaryOp.SQUARE, t, sq);
      int[] ones = new int[t.rank()], all = new int[t.rank()];
      java.util.Arrays.fill(ones, 1);
      for (int d = 0; d < all.length; d++) all[d] = d;
      long[] unit = new long[t.rank()];
      java.util.Arrays.fill(unit, 1);
      Tensor slot = slots.view(io.colossal4j.tensor.Shape.of(ones), unit, slots.offset() + i);
      if (t.rank() == 0) copy(sq, slot); else reduce(ReduceOp.SUM, sq, all, slot);
      sq.storage().release();
    }
  }

  /**
   * Whether {@link #crossEntropyForward} and {@link #crossEntropyBackward} run for logits [N, C] and targets [N]
   * (the reference composes log-softmax, gather and scatter over row chunks instead, see {@code ops.Loss}).
   */
  default boolean fusedCrossEntropy(Tensor logits, Tensor targets) { return false; }

  /**
   * Per row i of logits [N, C]: lse[i] = log Σ_c exp(x[i, c]) (contiguous f32 [N]) and nll[i] = lse[i] − x[i, t_i]
   * (contiguous [N], the logits' dtype, rounded once); targets [N] within [0, C) (the caller checks them).
   */
  default void crossEntropyForward(Tensor logits, Tensor targets, Tensor nll, Tensor lse) {
    throw new UnsupportedOperationException("crossEntropyForward is not implemented by " + getClass().getSimpleName());
  }

  /** The logits' gradient of Σ_i w[i]·nll[i]: gx[i, c] = (exp(x[i, c] − lse[i]) − [c = t_i])·w[i] (w [N], logits' dtype). */
  default void crossEntropyBackward(Tensor logits, Tensor targets, Tensor lse, Tensor w, Tensor gx) {
    throw new UnsupportedOperationException("crossEntropyBackward is not implemented by " + getClass().getSimpleName());
  }

  /** Whether {@link #adamStep} is a fast kernel that optimizers should prefer to composing elementwise ops. */
  default boolean fastAdamStep() { return false; }

  /**
   * One fused Adam/AdamW step over many parameters at once ({@link AdamUpdate} states the rule): each
   * parameter's p, m, v are updated in place from its gradient. All tensors of one parameter are contiguous
   * and on this backend; the math runs in f32 (f64 for f64 tensors) and is rounded once per stored value.
   */
  default void adamStep(java.util.List<AdamUpdate.Param> params, AdamUpdate update) {
    throw new UnsupportedOperationException("adamStep is not implemented by " + getClass().getSimpleName());
  }

  /**
   * Whether {@link #batchNormTrain} and {@link #batchNormTrainBackward} are fast kernels that the batch-norm op
   * should prefer to composing reductions and elementwise ops (the reference: the composed op).
   */
  default boolean fusedBatchNorm() { return false; }

  /**
   * Training-mode batch norm of x [N, C, ...] (contiguous): per channel c, over N and every trailing dim,
   * mean[c] and the biased var[c], then y = (x − mean)/sqrt(var + eps)·w + b (w, b: [C] or null). y is
   * contiguous like x; mean and var are contiguous [C] of x's dtype or f32.
   */
  default void batchNormTrain(Tensor x, Tensor w, Tensor b, double eps, Tensor y, Tensor mean, Tensor var) {
    throw new UnsupportedOperationException("batchNormTrain is not implemented by " + getClass().getSimpleName());
  }

  /**
   * The backward of {@link #batchNormTrain} through the batch statistics, from its saved mean and var: with
   * x̂ = (x − mean)·r, r = 1/sqrt(var + eps) and m values per channel, gb = Σ gy, gw = Σ gy·x̂ and
   * gx = w·r·(gy − gb/m − x̂·gw/m). gx (contiguous like x) is always written; gw, gb ([C]) when non-null.
   */
  default void batchNormTrainBackward(Tensor gy, Tensor x, Tensor w, Tensor mean, Tensor var, double eps,
                                      Tensor gx, Tensor gw, Tensor gb) {
    throw new UnsupportedOperationException("batchNormTrainBackward is not implemented by " + getClass().getSimpleName());
  }
}
