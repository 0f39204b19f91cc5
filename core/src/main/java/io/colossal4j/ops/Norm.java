package io.colossal4j.ops;

import io.colossal4j.autograd.Autograd;
import io.colossal4j.backend.BinaryOp;
import io.colossal4j.backend.Kernels;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;

/**
 * Normalisation layers' math, PyTorch semantics: layer norm (last dim, or the channel dim of NCHW),
 * RMS norm, batch norm (training and eval), group norm. Affine weight and bias may be null throughout.
 */
public final class Norm {
  private Norm() {}

  // ------------------------------------------------------------- layer norm

  /**
   * F.layer_norm over the last dim: y = (x - mean) / sqrt(var + eps) * w + b, var biased. w and b are [n]
   * (n = x.size(-1)) or null. Uses the fused layerNorm kernels on a contiguous copy of x.
   */
  public static Tensor layerNorm(Tensor x, Tensor w, Tensor b, double eps) {
    if (x.rank() < 1) throw new TensorException("layerNorm: input must have rank >= 1, got a scalar");
    OpSupport.requireFloating("layerNorm", x);
    int n = x.size(-1);
    checkAffine("layerNorm", x, w, b, n, "last dim");
    Tensor xd = Conv.dense(x), wd = w == null ? null : Conv.dense(w), bd = b == null ? null : Conv.dense(b);
    long rows = n == 0 ? 0 : x.numel() / n;
    // f64 inputs keep f64 statistics so that finite-difference checks see the exact math
    DType statType = x.dtype() == DType.F64 ? DType.F64 : DType.F32;
    Tensor mean = OpSupport.empty(Shape.of(Math.toIntExact(rows)), statType, x.backend());
    Tensor rstd = OpSupport.empty(Shape.of(Math.toIntExact(rows)), statType, x.backend());
    Tensor y = OpSupport.emptyLike(xd);
    Kernels k = x.backend().kernels();
    k.layerNorm(xd, wd, bd, eps, y, mean, rstd);
    if (!Autograd.needsGrad(x, w, b)) { // nothing will read the statistics or the dense copies: back to the pool now
      releaseIfTemporary(mean, null);
      releaseIfTemporary(rstd, null);
      releaseIfTemporary(xd, x);
      releaseIfTemporary(wd, w);
      releaseIfTemporary(bd, b);
      return y;
    }
    boolean gx = x.requiresGrad(), gw = w != null && w.requiresGrad(), gb = b != null && b.requiresGrad();
    // x's gradient folds in the one already pending for x (the residual path of a pre-norm block): the kernel adds it
    return Autograd.recordFolding("layer_norm", y, Autograd.saving(xd, wd, mean, rstd), 0, (g, pending) -> {
      Tensor dx = gx ? OpSupport.emptyLike(xd) : null;
      // straight into the parameters' gradients when they have none yet (no copy at accumulation)
      Tensor dw = gw ? OpSupport.gradientFor(w, wd.shape(), wd.dtype(), wd.backend()) : null;
      Tensor db = gb ? OpSupport.gradientFor(b, bd.shape(), bd.dtype(), bd.backend()) : null;
      Kernels kb = g.backend().kernels();
      if (pending != null && dx != null) kb.layerNormBackwardAccumulate(Conv.dense(g), xd, wd, mean, rstd, pending, dx, dw, db);
      // the kernel always writes gx; give it a scratch buffer when x needs no gradient
      else kb.layerNormBackward(Conv.dense(g), xd, wd, mean, rstd, dx != null ? dx : OpSupport.emptyLike(xd), dw, db);
      return new Tensor[] {dx, dw, db};
    }, x, w, b);
  }

  /** Releases t's storage unless t is null or is {@code original} itself (the caller's tensor, not a copy of it). */
  private static void releaseIfTemporary(Tensor t, Tensor original) {
    if (t != null && t != original) t.storage().release();
  }

  /**
   * Layer norm over dim 1 (channels) of x [N, C, ...]: ConvNeXt's channels-first LayerNorm2d. f32 on a backend
   * with channels-first kernels ({@link Kernels#fastLayerNormChannels}): those, in place in x's layout (the
   * result is contiguous). Otherwise as timm does: move channels last, layer norm, move back (the result is a
   * permuted view).
   */
  public static Tensor layerNorm2d(Tensor x, Tensor w, Tensor b, double eps) {
    if (x.rank() < 2) throw new TensorException("layerNorm2d: input must be [N, C, ...], got " + x.shape());
    int r = x.rank();
    int[] toLast = new int[r], back = new int[r];
    for (int i = 0, j = 0; i < r; i++) if (i != 1) toLast[j++] = i;
    toLast[r - 1] = 1;
    for (int i = 0; i < r; i++) back[toLast[i]] = i;
    if (x.backend().kernels().fastLayerNormChannels() && x.dtype() == DType.F32) return layerNormChannels(x, w, b, eps);
    return Views.permute(layerNorm(Views.permute(x, toLast), w, b, eps), back);
  }

  /**
   * layerNorm2d through the backend's channels-first kernels: y and the gradients come out contiguous in x's
   * layout, with no copy to channels-last and back.
   */
  private static Tensor layerNormChannels(Tensor x, Tensor w, Tensor b, double eps) {
    int c = x.size(1);
    checkAffine("layerNorm2d", x, w, b, c, "channel dim 1");
    Tensor xd = Conv.dense(x), wd = w == null ? null : Conv.dense(w), bd = b == null ? null : Conv.dense(b);
    int rows = Math.toIntExact(c == 0 ? 0 : x.numel() / c);
    Tensor mean = OpSupport.empty(Shape.of(rows), DType.F32, x.backend()), rstd = OpSupport.empty(Shape.of(rows), DType.F32, x.backend());
    Tensor y = OpSupport.emptyLike(xd);
    x.backend().kernels().layerNormChannels(xd, wd, bd, eps, y, mean, rstd);
    if (!Autograd.needsGrad(x, w, b)) {
      for (Tensor t : new Tensor[] {mean, rstd}) t.storage().release();
      releaseIfTemporary(xd, x);
      releaseIfTemporary(wd, w);
      releaseIfTemporary(bd, b);
      return y;
    }
    boolean gx = x.requiresGrad(), gw = w != null && w.requiresGrad(), gb = b != null && b.requiresGrad();
    return Autograd.recordSaving("layer_norm_2d", y, Autograd.saving(xd, wd, mean, rstd), g -> {
      Tensor dx = OpSupport.emptyLike(xd); // the kernel always writes gx
      Tensor dw = gw ? OpSupport.emptyLike(wd) : null, db = gb ? OpSupport.emptyLike(bd) : null;
      Tensor gd = Conv.dense(g);
      g.backend().kernels().layerNormChannelsBackward(gd, xd, wd, mean, rstd, dx, dw, db);
      releaseIfTemporary(gd, g);
      if (!gx) {
        dx.storage().release();
        dx = null;
      }
      return new Tensor[] {dx, dw, db};
    }, x, w, b);
  }

  // ------------------------------------------------------------- RMS norm

  /** F.rms_norm over the last dim: y = x / sqrt(mean(x^2) + eps) * w; w is [n] or null. Result in x's dtype. */
  public static Tensor rmsNorm(Tensor x, Tensor w, double eps) {
    if (x.rank() < 1) throw new TensorException("rmsNorm: input must have rank >= 1, got a scalar");
    OpSupport.requireFloating("rmsNorm", x);
    checkAffine("rmsNorm", x, w, null, x.size(-1), "last dim");
    Tensor xf = widen(x);
    Tensor y = Arith.mul(xf, Arith.rsqrt(Arith.addScalar(Reduce.mean(Arith.square(xf), true, -1), eps)));
    return Arith.cast(w == null ? y : Arith.mul(y, w), x.dtype());
  }

  // ------------------------------------------------------------- batch norm

  /** A batch norm layer's running mean and (unbiased) variance, each [C]; updated in place in training. */
  public record RunningStats(Tensor mean, Tensor var) {
    public RunningStats {
      if (mean.rank() != 1 || !mean.shape().equals(var.shape()))
        throw new TensorException("RunningStats: mean and var must both be [C], got " + mean.shape() + " and " + var.shape());
    }
  }

  /**
   * Training-mode F.batch_norm on x [N, C, ...]: normalises with the batch's mean and biased variance over
   * every dim but 1, and (when {@code running} is non-null) updates it in place as PyTorch does:
   * {@code mean = (1 - momentum) * mean + momentum * batchMean}, {@code var = (1 - momentum) * var +
   * momentum * batchVar * m / (m - 1)} with m values per channel. Gradients flow through the batch statistics.
   */
  public static Tensor batchNormTrain(Tensor x, Tensor w, Tensor b, RunningStats running, double momentum, double eps) {
    int[] dims = checkBatchNorm("batchNormTrain", x, w, b, running);
    long m = x.numel() / x.size(1);
    if (m <= 1)
      throw new TensorException("batchNormTrain: expected more than 1 value per channel in training, got input " + x.shape());
    Kernels k = x.backend().kernels();
    if (k.fusedBatchNorm() && (x.dtype() == DType.F32 || x.dtype() == DType.F64)) return batchNormFused(x, w, b, running, momentum, eps);
    Tensor xf = widen(x);
    Tensor mean = Reduce.mean(xf, true, dims);
    Tensor centered = Arith.sub(xf, mean);
    Tensor var = Reduce.mean(Arith.square(centered), true, dims);
    Tensor y = Arith.mul(centered, Arith.rsqrt(Arith.addScalar(var, eps)));
    if (running != null) { // kernels only: the update is not part of the graph
      blendInPlace(running.mean(), mean, momentum, 1.0);
      blendInPlace(running.var(), var, momentum, m / (double) (m - 1));
    }
    return Arith.cast(affine(y, w, b), x.dtype());
  }

  /**
   * batchNormTrain through the backend's fused kernels (x f32 or f64): statistics, normalisation and affine in
   * one kernel, the backward through the statistics in another, instead of about ten composed ops each way.
   */
  private static Tensor batchNormFused(Tensor x, Tensor w, Tensor b, RunningStats running, double momentum, double eps) {
    Tensor xd = Conv.dense(x), wd = w == null ? null : Conv.dense(w), bd = b == null ? null : Conv.dense(b);
    long m = x.numel() / x.size(1);
    Tensor mean = OpSupport.empty(Shape.of(x.size(1)), x.dtype(), x.backend());
    Tensor var = OpSupport.empty(Shape.of(x.size(1)), x.dtype(), x.backend());
    Tensor y = OpSupport.emptyLike(xd);
    x.backend().kernels().batchNormTrain(xd, wd, bd, eps, y, mean, var);
    if (running != null) {
      blendInPlace(running.mean(), mean, momentum, 1.0);
      blendInPlace(running.var(), var, momentum, m / (double) (m - 1));
    }
    boolean gx = x.requiresGrad(), gw = w != null && w.requiresGrad(), gb = b != null && b.requiresGrad();
    return Autograd.recordSaving("batch_norm", y, Autograd.saving(xd, wd, mean, var), g -> {
      Tensor dx = gx ? OpSupport.emptyLike(xd) : null;
      Tensor dw = gw ? OpSupport.emptyLike(wd) : null;
      Tensor db = gb ? OpSupport.emptyLike(bd) : null;
      // the kernel always writes gx; give it a scratch buffer when x needs no gradient
      g.backend().kernels().batchNormTrainBackward(Conv.dense(g), xd, wd, mean, var, eps, dx != null ? dx : OpSupport.emptyLike(xd), dw, db);
      return new Tensor[] {dx, dw, db};
    }, x, w, b);
  }

  /** Eval-mode F.batch_norm: y = (x - runningMean) / sqrt(runningVar + eps) * w + b, folded to x * scale + shift. */
  public static Tensor batchNormEval(Tensor x, Tensor w, Tensor b, RunningStats running, double eps) {
    if (running == null) throw new TensorException("batchNormEval: needs running statistics (got null)");
    checkBatchNorm("batchNormEval", x, w, b, running);
    Shape cShape = channelShape(x);
    Tensor rMean = Views.reshape(running.mean().detach(), cShape.toArray());
    Tensor scale = Arith.rsqrt(Arith.addScalar(Views.reshape(running.var().detach(), cShape.toArray()), eps));
    if (w != null) scale = Arith.mul(scale, Views.reshape(w, cShape.toArray()));
    Tensor shift = Arith.neg(Arith.mul(rMean, scale));
    if (b != null) shift = Arith.add(shift, Views.reshape(b, cShape.toArray()));
    return Arith.cast(Arith.add(Arith.mul(widen(x), scale), shift), x.dtype());
  }

  /** target = (1 - momentum) * target + momentum * factor * stat, in place (stat is [1, C, 1, ...], contiguous). */
  private static void blendInPlace(Tensor target, Tensor stat, double momentum, double factor) {
    Kernels k = target.backend().kernels();
    Tensor s = stat.view(target.shape(), new long[] {1}, stat.offset());
    Tensor scaled = OpSupport.emptyLike(target);
    k.binaryScalar(BinaryOp.MUL, s, momentum * factor, scaled);
    k.binaryScalar(BinaryOp.MUL, target, 1 - momentum, target);
    k.binary(BinaryOp.ADD, target, scaled, target);
  }

  private static int[] checkBatchNorm(String op, Tensor x, Tensor w, Tensor b, RunningStats running) {
    if (x.rank() < 2) throw new TensorException(op + ": input must be [N, C, ...], got " + x.shape());
    OpSupport.requireFloating(op, x);
    int c = x.size(1);
    checkAffine(op, x, w, b, c, "channels (dim 1)");
    if (running != null) {
      if (running.mean().size(0) != c)
        throw new TensorException(op + ": running statistics have " + running.mean().size(0) + " channels, input " + x.shape() + " has " + c);
      if (running.mean().requiresGrad() || running.var().requiresGrad())
        throw new TensorException(op + ": running statistics are buffers and must not require grad");
    }
    int[] dims = new int[x.rank() - 1];
    for (int i = 0, j = 0; i < x.rank(); i++) if (i != 1) dims[j++] = i;
    return dims;
  }

  // ------------------------------------------------------------- group norm

  /**
   * F.group_norm on x [N, C, ...]: the C channels form {@code groups} groups, each normalised over its
   * channels and all spatial positions (biased variance), then the per-channel affine w, b ([C] or null).
   */
  public static Tensor groupNorm(Tensor x, int groups, Tensor w, Tensor b, double eps) {
    if (x.rank() < 2) throw new TensorException("groupNorm: input must be [N, C, ...], got " + x.shape());
    int c = x.size(1);
    if (groups < 1 || c % groups != 0)
      throw new TensorException("groupNorm: " + c + " channels (input " + x.shape() + ") are not divisible into " + groups + " groups");
    checkAffine("groupNorm", x, w, b, c, "channels (dim 1)");
    Tensor normed = layerNorm(Views.reshape(x, x.size(0) * groups, -1), null, null, eps);
    return affine(Views.reshape(normed, x.shape().toArray()), w, b);
  }

  // ------------------------------------------------------------- shared

  /**
   * bf16 and f16 inputs are normalised in f32 and rounded once at the end, as PyTorch computes their
   * statistics in f32; other dtypes are returned unchanged.
   */
  private static Tensor widen(Tensor x) {
    return x.dtype() == DType.BF16 || x.dtype() == DType.F16 ? Arith.cast(x, DType.F32) : x;
  }

  /** y * w + b with w, b ([C], either may be null) broadcast along dim 1. */
  private static Tensor affine(Tensor y, Tensor w, Tensor b) {
    int[] cShape = channelShape(y).toArray();
    Tensor r = w == null ? y : Arith.mul(y, Views.reshape(w, cShape));
    return b == null ? r : Arith.add(r, Views.reshape(b, cShape));
  }

  /** [1, C, 1, ...] of x's rank. */
  private static Shape channelShape(Tensor x) {
    int[] d = new int[x.rank()];
    java.util.Arrays.fill(d, 1);
    d[1] = x.size(1);
    return Shape.of(d);
  }

  private static void checkAffine(String op, Tensor x, Tensor w, Tensor b, int n, String what) {
    for (Tensor t : new Tensor[] {w, b}) {
      if (t == null) continue;
      OpSupport.sameBackend(op, x, t);
      if (t.rank() != 1 || t.size(0) != n)
        throw new TensorException(op + ": weight and bias must be [" + n + "] to match the " + what + " of input " + x.shape() + ", got " + t.shape());
    }
  }
}
