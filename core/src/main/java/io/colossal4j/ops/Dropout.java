package io.colossal4j.ops;

import io.colossal4j.backend.BinaryOp;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Rng;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;

/**
 * Dropout and drop-path (stochastic depth) with explicit randomness.
 *
 * <p>The random numbers come from {@code Kernels.uniform(u, seed, offset)} with (seed, offset) reserved
 * from the given {@link Rng} stream ({@code rng.take(n)}), so the mask is a pure function of the stream's
 * position: every backend draws the same mask, and activation checkpointing reproduces it by restoring the
 * stream. An element is kept when its uniform u satisfies u < 1 − p (probability 1 − p) and kept elements
 * are scaled by 1/(1 − p) (inverted dropout), so the expectation is unchanged and evaluation is the identity.
 * The gradient is the same mask times the incoming gradient (the op is x · mask, recorded as a product).
 */
public final class Dropout {
  private Dropout() {}

  /** Zeroes each element with probability p in training; the identity (x itself) when not training or p = 0. */
  public static Tensor dropout(Tensor x, double p, Rng rng, boolean training) {
    checkProbability("dropout", p);
    if (!training || p == 0 || x.numel() == 0) return x;
    OpSupport.requireFloating("dropout", x);
    requireRng("dropout", rng);
    return Arith.mul(x, keepMask(x.shape(), p, rng, x));
  }

  /**
   * Drop-path (stochastic depth, as timm's drop_path): one keep/drop decision per sample (dim 0), applied
   * to the whole sample and scaled by 1/keep, keep = 1 − p. Used on residual branches:
   * {@code x + dropPath(branch(x), p, rng, training)}.
   */
  public static Tensor dropPath(Tensor x, double p, Rng rng, boolean training) {
    checkProbability("dropPath", p);
    if (!training || p == 0 || x.numel() == 0) return x;
    OpSupport.requireFloating("dropPath", x);
    requireRng("dropPath", rng);
    if (x.rank() == 0) throw new TensorException("dropPath: needs a batch dim (rank >= 1), got a scalar");
    int[] perSample = new int[x.rank()];
    java.util.Arrays.fill(perSample, 1);
    perSample[0] = x.size(0);
    return Arith.mul(x, keepMask(Shape.of(perSample), p, rng, x));
  }

  /**
   * The scaled keep mask of {@code shape}: 1/(1 − p) with probability 1 − p, else 0, in {@code like}'s dtype,
   * consuming shape.numel() numbers of the stream. Not recorded by autograd (it is a constant).
   */
  public static Tensor keepMask(Shape shape, double p, Rng rng, Tensor like) {
    checkProbability("dropout", p);
    Tensor u = Tensor.empty(shape, DType.F32, like.backend());
    long offset = rng.take(shape.numel());
    like.backend().kernels().uniform(u, rng.seed(), offset);
    // u has 24-bit resolution (k / 2^24), so the keep probability is 1 - p rounded up to a multiple of 2^-24
    Tensor kept = OpSupport.empty(shape, DType.BOOL, like.backend());
    like.backend().kernels().binaryScalar(BinaryOp.LT, u, 1 - p, kept);
    Tensor keep = OpSupport.empty(shape, like.dtype(), like.backend());
    like.backend().kernels().copy(kept, keep);
    like.backend().kernels().binaryScalar(BinaryOp.MUL, keep, 1 / (1 - p), keep);
    return keep;
  }

  private static void checkProbability(String op, double p) {
    if (!(p >= 0 && p < 1)) throw new TensorException(op + ": probability must be in [0, 1), got " + p);
  }

  private static void requireRng(String op, Rng rng) {
    if (rng == null) throw new TensorException(op + ": training with p > 0 needs an Rng stream, got null");
  }
}
