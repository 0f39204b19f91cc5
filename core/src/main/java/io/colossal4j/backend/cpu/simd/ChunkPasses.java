package io.colossal4j.backend.cpu.simd;

import static io.colossal4j.backend.cpu.simd.VMath.S;

import jdk.incubator.vector.FloatVector;

/**
 * tanh and its derivative split into short passes over an L1-resident chunk of heap floats. Why: the JIT stops inlining a compilation once its IR passes a fixed node
 * budget, and every Vector API call costs hundreds of nodes while parsing; a single loop computing GELU
 * (two polynomials, an exponential, five blends) crossed it, and the vector calls left out of line then box
 * their vectors (measured 20-50x slower). GELU and erf have since moved to single-branch forms that fit one
 * loop ({@link ActivationRows}). Each pass here is its own small method, so each is compiled
 * within budget with all vectors in registers; the extra loads and stores hit L1.
 *
 * <p>All arrays hold at least n floats and n is a multiple of the vector length. The math is exactly
 * {@link VMath}'s (same coefficients, same branch points), so the bounds stated there hold.
 */
final class ChunkPasses {
  private ChunkPasses() {}

  static final int L = S.length();

  /** e[i] = e^{2|x[i]|}. */
  static void expTwiceAbs(float[] x, float[] e, int n) {
    for (int i = 0; i < n; i += L) {
      FloatVector a = FloatVector.fromArray(S, x, i).abs();
      VMath.exp(a.add(a)).intoArray(e, i);
    }
  }

  /** out[i] = tanh(x[i]) from e = e^{2|x|}: x·P(x²) below 0.625, 1 − 2/(e + 1) above, with x's sign. */
  static void tanhCombine(float[] x, float[] e, float[] out, int n) {
    for (int i = 0; i < n; i += L) {
      FloatVector v = FloatVector.fromArray(S, x, i), a = v.abs();
      FloatVector large = FloatVector.broadcast(S, 1f).sub(FloatVector.broadcast(S, 2f).div(FloatVector.fromArray(S, e, i).add(1f)));
      VMath.copySign(large.blend(VMath.tanhSmallPoly(a.mul(a)).mul(a), a.lt(0.625f)), v).intoArray(out, i);
    }
  }

  /** out[i] = (1 − t[i]²)·g[i]: tanh's derivative times the incoming gradient. */
  static void tanhGradCombine(float[] t, float[] g, float[] out, int n) {
    for (int i = 0; i < n; i += L) {
      FloatVector tv = FloatVector.fromArray(S, t, i);
      VMath.fma(tv.neg(), tv, 1f).mul(FloatVector.fromArray(S, g, i)).intoArray(out, i);
    }
  }
}
