package io.colossal4j.backend.cpu.simd;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector f32 transcendental functions with stated error bounds (measured against double-precision
 * references over dense grids in {@code KernelConformance}, {@code NormalCdfTest} and {@code SoftmaxExpTest}; ulp =
 * the f32 spacing at the exact result):
 * <ul>
 *   <li>{@link #exp}: ≤ 2 ulp. Cody–Waite reduction x = n·ln2 + r (|r| ≤ ln2/2, ln2 split in two so n·ln2_hi
 *       is exact), degree-7 Taylor polynomial for e^r (truncation r^8/8! &lt; 2^-27), scaling by 2^n as two
 *       exponent-built factors so that n in [-150, 128] needs no special cases: overflow gives +inf,
 *       underflow goes gradually to 0, NaN propagates.</li>
 *   <li>{@link #tanh}: ≤ 3 ulp. |x| &lt; 0.625: x·P(x²), a degree-5 fit of tanh(x)/x (fit error 4e-9);
 *       beyond: 1 − 2/(e^{2|x|} + 1), where no cancellation remains.</li>
 *   <li>{@link #normalCdf} Φ(x), one branch for every x: Φ(−u) = e^{−u²/2}·R(t), t = 1/(1 + 0.47u), u = |x|, and
 *       Φ(x) = 1 − Φ(−x) for x ≥ 0. R, a degree-11 polynomial in t, fits erfcx(u/√2)/2 over u ∈ [0, 13.22]
 *       (5.8e-9 relative; {@code scripts/fit_normal_tail.py}, which prints the coefficients below and explains the
 *       choice of 0.47: the rounding of t costs dlnR/dlnt = 0.798/0.47 times its own error near u = 0, and R in f32
 *       arithmetic stays within 3.9 ulp). The left tail keeps its relative accuracy: u² is split exactly into
 *       h + l by an FMA and l enters the exponential's reduced argument (a rounded u² would cost up to
 *       2u²·2^-24 relative, 16 ulp at u = 4). Below x = −13.22 e^{−x²/2} leaves the normal f32 range and is 0.
 *       {@link #gelu} = x·Φ(x): ≤ 6 ulp wherever it is a normal f32 (+ 1.2e-44 absolute below x = −13.0, where Φ
 *       is subnormal), 0 below −13.22 (the exact value is under 5e-39 there). Its derivative Φ + x·φ, from the same e^{−x²/2}: ≤ 6 ulp + 4·2^-24·(Φ + |x|φ), the
 *       rounding of the two terms it cancels for x &lt; 0, and it loses x·φ ≤ 6.3e-38 where the exponential is 0.
 *       No branch and no clamp: every lane runs the same ~40 operations.</li>
 *   <li>{@link #erf}: ≤ 4 ulp (measured 2.3). |x| &lt; 1: x·P(x²), a degree-6 fit of erf(x)/x (fit error 1.2e-9 relative);
 *       beyond: 1 − erfc(|x|) with erfc(a) = 2Φ(−a√2) as above (e^{−a²} again from the exact split of a²);
 *       erfc is ≤ 0.16 there, so its error reaches the result reduced.</li>
 * </ul>
 * The coefficients were fitted (iteratively reweighted least squares on Chebyshev nodes) for this class.
 * Pure functions of their arguments; thread-safe.
 */
final class VMath {
  /**
   * Sum of the lanes in a fixed left-to-right order. {@code reduceLanes(ADD)} is not used for floats: its
   * intrinsic (a tree) and its Java fallback (a loop) round differently, and which one runs depends on JIT
   * timing, which made identical calls return results differing in the last bit from one step to the next.
   */
  static float sumLanes(FloatVector v) {
    float[] lanes = v.toArray();
    float s = 0;
    for (float x : lanes) s += x;
    return s;
  }

  private VMath() {}

  static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
  private static final VectorSpecies<Integer> SI = IntVector.SPECIES_PREFERRED;

  private static final float LOG2E = 1.4426950408889634f;
  private static final float LN2_HI = 0.693145751953125f;   // 12 significant bits: n·LN2_HI is exact for |n| < 2^11
  private static final float LN2_LO = 1.4286068203094172e-6f;
  private static final float ROUND = 12582912f;             // 1.5·2^23: adding it rounds to an integer

  private static final float[] TANH_P = {0.9999999960909259f, -0.33333260607271675f, 0.13331128687663446f,
      -0.05372113531084987f, 0.02059116038014939f, -0.0056601489866667295f};
  /** erf(x)/x ≈ E0 + E1·x² + ... + E6·x¹² for |x| &lt; 1. */
  private static final float E0 = 1.1283791657322924f, E1 = -0.37612625839605585f, E2 = 0.11283585269683807f,
      E3 = -0.02685381603197315f, E4 = 0.005188334439200165f, E5 = -0.0008010247160119138f, E6 = 7.854024803963244e-05f;

  static FloatVector exp(FloatVector x) {
    x = x.max(-104f).min(89f);                       // keeps n in [-150, 129]; NaN passes through max/min
    FloatVector n = x.fma(LOG2E, ROUND).sub(ROUND);
    FloatVector r = n.fma(FloatVector.broadcast(S, -LN2_HI), x);
    r = n.fma(FloatVector.broadcast(S, -LN2_LO), r);
    FloatVector p = FloatVector.broadcast(S, 1f / 5040);
    p = fma(p, r, 1f / 720);
    p = fma(p, r, 1f / 120);
    p = fma(p, r, 1f / 24);
    p = fma(p, r, 1f / 6);
    p = fma(p, r, 0.5f);
    p = fma(p, r, 1f);
    p = fma(p, r, 1f);
    // n is integral and small, so the magic-number sum holds it in its low mantissa bits: no F2I conversion
    // (which the JIT did not always intrinsify)
    IntVector ni = x.fma(LOG2E, ROUND).reinterpretAsInts().sub(Float.floatToRawIntBits(ROUND));
    IntVector half = ni.lanewise(VectorOperators.ASHR, 1);
    FloatVector s1 = half.add(127).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
    FloatVector s2 = ni.sub(half).add(127).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
    return p.mul(s1).mul(s2);
  }

  private static final float ROUND_127 = ROUND + 127;       // its sum with n holds n + 127 in its low mantissa bits
  private static final float EXP_MIN_NORMAL = -87.33654f;   // below ln(2^-126), e^x is subnormal in f32

  /**
   * e^x for x ≤ 0, the shifted inputs of softmax: ≤ 2 ulp where the result is a normal f32 (x ≥ −87.3365),
   * 0 below (the exact value is under 2^-126 = 1.2e-38 there: an absolute error that small). NaN gives NaN
   * and −inf gives 0. For x &gt; 0 the result is wrong: callers guarantee x ≤ 0. Same reduction and polynomial
   * as {@link #exp} (hence the same bound), but n + 127 ∈ [1, 127] here, so 2^n is one exponent shift of
   * the rounding sum's bits and there are no clamps: about 15 vector operations instead of 22.
   */
  static FloatVector expNonPositive(FloatVector x) {
    FloatVector m = x.fma(LOG2E, ROUND_127);          // 1.5·2^23 + (n + 127), n = round(x·log2 e)
    FloatVector n = m.sub(ROUND_127);
    FloatVector r = n.fma(FloatVector.broadcast(S, -LN2_HI), x);
    r = n.fma(FloatVector.broadcast(S, -LN2_LO), r);
    FloatVector p = FloatVector.broadcast(S, 1f / 5040);
    p = fma(p, r, 1f / 720);
    p = fma(p, r, 1f / 120);
    p = fma(p, r, 1f / 24);
    p = fma(p, r, 1f / 6);
    p = fma(p, r, 0.5f);
    p = fma(p, r, 1f);
    p = fma(p, r, 1f);
    // the mantissa of m is 2^22 + n + 127, whose low 9 bits are n + 127: shifted into the exponent field, 2^n
    FloatVector scale = m.reinterpretAsInts().lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
    return p.mul(scale).blend(0f, x.lt(EXP_MIN_NORMAL));
  }

  static FloatVector tanh(FloatVector x) {
    FloatVector a = x.abs();
    FloatVector t = a.mul(a);
    FloatVector small = poly(TANH_P, t).mul(a);
    FloatVector large = FloatVector.broadcast(S, 1f).sub(FloatVector.broadcast(S, 2f).div(exp(a.add(a)).add(1f)));
    FloatVector r = large.blend(small, a.lt(0.625f));
    return copySign(r, x);
  }

  /**
   * erf(x) from {@code oneMinusErfc} = {@link #oneMinusErfc}(|x|): x·P(x²) below |x| = 1, that value above. Two
   * calls, because one loop computing both crossed the JIT's node budget and boxed its vectors (ActivationRows
   * runs them as two passes over an L1 chunk).
   */
  static FloatVector erf(FloatVector x, FloatVector oneMinusErfc) {
    FloatVector a = x.abs(), a2 = a.mul(a);
    FloatVector p = FloatVector.broadcast(S, E6);      // P(x²): erf(x) = x·P(x²) for |x| < 1
    p = p.fma(a2, FloatVector.broadcast(S, E5));
    p = p.fma(a2, FloatVector.broadcast(S, E4));
    p = p.fma(a2, FloatVector.broadcast(S, E3));
    p = p.fma(a2, FloatVector.broadcast(S, E2));
    p = p.fma(a2, FloatVector.broadcast(S, E1));
    p = p.fma(a2, FloatVector.broadcast(S, E0));
    return copySign(oneMinusErfc.blend(p.mul(a), a.lt(1f)), x);
  }

  /** 1 − erfc(a) for a ≥ 0, erfc(a) = 2Φ(−a√2) (class comment); e^{−a²} from the exact split of a². */
  static FloatVector oneMinusErfc(FloatVector a) {
    FloatVector erfc = expNegSquare(a, 1f).mul(halfErfcxOverRoot2(a.mul(SQRT2))).mul(2f);
    return FloatVector.broadcast(S, 1f).sub(erfc);
  }

  /** Φ(x), the standard normal CDF, one branch for every lane (see the class comment). */
  static FloatVector normalCdf(FloatVector x) {
    return normalCdf(x, expNegSquare(x, 0.5f));
  }

  /**
   * GELU, x·Φ(x). Φ(x) is subnormal between x = −13.22 and −13.0 (x·Φ is still normal there): its rounding, at
   * most 2^-150, then costs up to 13.3·2^-150 = 1.2e-44 absolute, a few ulp of results around 1e-37.
   */
  static FloatVector gelu(FloatVector x) {
    return x.mul(normalCdf(x));
  }

  /** Φ(x) given e = e^{−x²/2} ({@link #expNegSquare}(x, 0.5)), which GELU's derivative needs as well. */
  static FloatVector normalCdf(FloatVector x, FloatVector e) {
    FloatVector left = e.mul(halfErfcxOverRoot2(x.abs()));                     // Φ(−|x|)
    // NaN: left is NaN and both sides of the blend carry it
    return FloatVector.broadcast(S, 1f).sub(left).blend(left, x.lt(0f));
  }

  private static final float SQRT2 = 1.4142135623730951f;
  private static final float TAIL_Q = 0.47f;
  /** e^r ≈ 1 + r + X2·r² + ... + X6·r⁶ for |r| ≤ ln2/2 (scripts/fit_normal_tail.py). */
  private static final float X2 = 0.49999994f, X3 = 0.16666523f, X4 = 0.041668292f, X5 = 0.008368532f, X6 = 0.0013818295f;
  private static final float R0 = -2.51454e-06f, R1 = 0.187586f, R2 = 0.18632011f, R3 = 0.15557066f, R4 = 0.016254691f,
      R5 = 0.11282142f, R6 = -0.35970712f, R7 = 0.15939648f, R8 = 0.24524742f, R9 = -0.33869478f, R10 = 0.1657944f,
      R11 = -0.030586775f;

  /**
   * erfcx(u/√2)/2 = e^{u²/2}·Φ(−u) for u ≥ 0: R(t), t = 1/(1 + 0.47u) (class comment). NaN gives NaN; u = +inf
   * gives R(0), finite, which callers multiply by an exponential that is 0 there.
   */
  private static FloatVector halfErfcxOverRoot2(FloatVector u) {
    FloatVector t = FloatVector.broadcast(S, 1f).div(u.fma(TAIL_Q, 1f));
    FloatVector r = FloatVector.broadcast(S, R11);
    r = r.fma(t, FloatVector.broadcast(S, R10));
    r = r.fma(t, FloatVector.broadcast(S, R9));
    r = r.fma(t, FloatVector.broadcast(S, R8));
    r = r.fma(t, FloatVector.broadcast(S, R7));
    r = r.fma(t, FloatVector.broadcast(S, R6));
    r = r.fma(t, FloatVector.broadcast(S, R5));
    r = r.fma(t, FloatVector.broadcast(S, R4));
    r = r.fma(t, FloatVector.broadcast(S, R3));
    r = r.fma(t, FloatVector.broadcast(S, R2));
    r = r.fma(t, FloatVector.broadcast(S, R1));
    return r.fma(t, FloatVector.broadcast(S, R0));
  }

  /**
   * e^{−k·a²} for k = 1/2 or 1, to ≤ 2 ulp where the result is a normal f32 (the reduction of {@link #exp}, a
   * degree-6 minimax polynomial for e^r) and 0 below (k·a² &gt; 87.34); NaN
   * gives NaN. a² = h + l exactly (an FMA gives l), k·h and k·l are exact, and −k·l joins the reduced argument
   * of {@link #expNonPositive}'s scheme, so the result keeps relative accuracy however large a² is.
   */
  static FloatVector expNegSquare(FloatVector a, float k) {
    FloatVector h = a.mul(a);
    FloatVector l = a.fma(a, h.neg());
    FloatVector y = h.mul(-k);
    FloatVector m = y.fma(LOG2E, ROUND_127);          // 1.5·2^23 + (n + 127), n = round(y·log2 e)
    FloatVector n = m.sub(ROUND_127);
    FloatVector r = n.fma(FloatVector.broadcast(S, -LN2_HI), y);
    r = n.fma(FloatVector.broadcast(S, -LN2_LO), r);
    r = l.fma(FloatVector.broadcast(S, -k), r);
    FloatVector p = FloatVector.broadcast(S, X6);     // degree-6 minimax for e^r (0.70 ulp; Taylor needs degree 7)
    p = p.fma(r, FloatVector.broadcast(S, X5));
    p = p.fma(r, FloatVector.broadcast(S, X4));
    p = p.fma(r, FloatVector.broadcast(S, X3));
    p = p.fma(r, FloatVector.broadcast(S, X2));
    p = p.fma(r, FloatVector.broadcast(S, 1f));
    p = p.fma(r, FloatVector.broadcast(S, 1f));
    FloatVector scale = m.reinterpretAsInts().lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
    return p.mul(scale).blend(0f, y.lt(EXP_MIN_NORMAL));
  }

  static FloatVector tanhSmallPoly(FloatVector t) { return poly(TANH_P, t); }

  /** a·b + c with one rounding. */
  static FloatVector fma(FloatVector a, FloatVector b, float c) { return a.fma(b, FloatVector.broadcast(S, c)); }

  /** |mag| with the sign bit of sgn. */
  static FloatVector copySign(FloatVector mag, FloatVector sgn) {
    IntVector m = mag.reinterpretAsInts().and(0x7fffffff), s = sgn.reinterpretAsInts().and(0x80000000);
    return m.or(s).reinterpretAsFloats();
  }

  /** Horner evaluation of c[0] + c[1] t + ... with FMAs. */
  private static FloatVector poly(float[] c, FloatVector t) {
    FloatVector p = FloatVector.broadcast(S, c[c.length - 1]);
    for (int i = c.length - 2; i >= 0; i--) p = fma(p, t, c[i]);
    return p;
  }
}
