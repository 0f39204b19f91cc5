package io.colossal4j.backend.cpu.simd;

import static io.colossal4j.backend.cpu.simd.VMath.S;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

/**
 * The long transcendental functions (erf, Φ, GELU and its derivative) split into short passes over an
 * L1-resident chunk of heap floats. Why: the JIT stops inlining a compilation once its IR passes a fixed node
 * budget, and every Vector API call costs hundreds of nodes while parsing; a single loop computing GELU
 * (two polynomials, an exponential, five blends) crossed it, and the vector calls left out of line then box
 * their vectors (measured 20-50x slower). Each pass here is its own small method, so each is compiled
 * within budget with all vectors in registers; the extra loads and stores hit L1.
 *
 * <p>All arrays hold at least n floats and n is a multiple of the vector length. The math is exactly
 * {@link VMath}'s (same coefficients, same branch points), so the bounds stated there hold.
 */
final class ChunkPasses {
  private ChunkPasses() {}

  static final int L = S.length();

  /** a[i] = e^{a[i]}. */
  static void exp(float[] a, int n) {
    for (int i = 0; i < n; i += L) VMath.exp(FloatVector.fromArray(S, a, i)).intoArray(a, i);
  }

  /** q[i] = Q(clamp(|s·x[i]|, 1, 4) − 2.5): the log-erfc polynomial, to be exponentiated. */
  static void logErfcPoly(float[] x, float s, float[] q, int n) {
    for (int i = 0; i < n; i += L) {
      FloatVector a = FloatVector.fromArray(S, x, i).mul(s).abs();
      VMath.logErfcPoly(a.max(1f).min(4f).sub(2.5f)).intoArray(q, i);
    }
  }

  /** m[i] = z·P(z²) with z = s·x[i]: erf for |z| &lt; 1. */
  static void erfSmall(float[] x, float s, float[] m, int n) {
    for (int i = 0; i < n; i += L) {
      FloatVector z = FloatVector.fromArray(S, x, i).mul(s);
      VMath.erfSmallPoly(z.mul(z)).mul(z).intoArray(m, i);
    }
  }

  /** out[i] = erf(x[i]) from e = e^{Q} (≈ erfc(|x|) for 1 ≤ |x| &lt; 4) and m = the small-argument erf. */
  static void erfCombine(float[] x, float[] e, float[] m, float[] out, int n) {
    for (int i = 0; i < n; i += L) {
      FloatVector v = FloatVector.fromArray(S, x, i), a = v.abs();
      FloatVector tail = FloatVector.fromArray(S, e, i).blend(0f, a.compare(VectorOperators.GE, 4f));
      FloatVector big = VMath.copySign(FloatVector.broadcast(S, 1f).sub(tail), v);
      big.blend(FloatVector.fromArray(S, m, i), a.lt(1f)).intoArray(out, i);
    }
  }

  /**
   * out[i] = Φ(x[i]) from e = e^{Q} and m = erf(z) for z = x/√2 (|z| &lt; 1): the left tail uses erfc(|z|)/2
   * directly so it keeps relative accuracy; beyond |z| = 4 the tail is 0 and the right side 1.
   */
  static void normalCdfCombine(float[] x, float[] e, float[] m, float[] out, int n) {
    for (int i = 0; i < n; i += L) {
      FloatVector z = FloatVector.fromArray(S, x, i).mul(VMath.INV_SQRT2), a = z.abs();
      FloatVector tail = FloatVector.fromArray(S, e, i).blend(0f, a.compare(VectorOperators.GE, 4f)).mul(0.5f);
      FloatVector mid = FloatVector.fromArray(S, m, i).mul(0.5f).add(0.5f);
      FloatVector right = FloatVector.broadcast(S, 1f).sub(tail);
      right.blend(tail, z.compare(VectorOperators.LE, -1f)).blend(mid, a.lt(1f)).intoArray(out, i);
    }
  }

  /** a[i] = a[i]·b[i]. */
  static void mul(float[] a, float[] b, int n) {
    for (int i = 0; i < n; i += L) FloatVector.fromArray(S, a, i).mul(FloatVector.fromArray(S, b, i)).intoArray(a, i);
  }

  /** t[i] = −x[i]²/2. */
  static void negHalfSquare(float[] x, float[] t, int n) {
    for (int i = 0; i < n; i += L) {
      FloatVector v = FloatVector.fromArray(S, x, i);
      v.mul(v).mul(-0.5f).intoArray(t, i);
    }
  }

  /** out[i] = (Φ[i] + x[i]·e[i]/√(2π))·g[i], with e = e^{−x²/2}: GELU's derivative times the incoming gradient. */
  static void geluGradCombine(float[] x, float[] phi, float[] e, float[] g, float[] out, int n) {
    for (int i = 0; i < n; i += L) {
      FloatVector pdf = FloatVector.fromArray(S, e, i).mul(0.3989422804014327f);
      FloatVector.fromArray(S, x, i).fma(pdf, FloatVector.fromArray(S, phi, i)).mul(FloatVector.fromArray(S, g, i)).intoArray(out, i);
    }
  }

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
