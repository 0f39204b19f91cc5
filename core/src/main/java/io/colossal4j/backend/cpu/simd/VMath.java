package io.colossal4j.backend.cpu.simd;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector f32 transcendental functions with stated error bounds (measured against double-precision
 * references over dense grids in {@code VMathTest}; ulp = the f32 spacing at the exact result):
 * <ul>
 *   <li>{@link #exp}: ≤ 2 ulp. Cody–Waite reduction x = n·ln2 + r (|r| ≤ ln2/2, ln2 split in two so n·ln2_hi
 *       is exact), degree-7 Taylor polynomial for e^r (truncation r^8/8! &lt; 2^-27), scaling by 2^n as two
 *       exponent-built factors so that n in [-150, 128] needs no special cases: overflow gives +inf,
 *       underflow goes gradually to 0, NaN propagates.</li>
 *   <li>{@link #tanh}: ≤ 3 ulp. |x| &lt; 0.625: x·P(x²), a degree-5 fit of tanh(x)/x (fit error 4e-9);
 *       beyond: 1 − 2/(e^{2|x|} + 1), where no cancellation remains.</li>
 *   <li>{@link #erf}: ≤ 4 ulp. |x| &lt; 1: x·P(x²), a degree-6 fit of erf(x)/x (fit error 1.2e-9 relative);
 *       1 ≤ |x| &lt; 4: 1 − e^{Q(|x| − 2.5)}, Q a degree-10 fit of log erfc (fit error 1.6e-9 absolute,
 *       i.e. relative on erfc, which is ≤ 0.16 there); |x| ≥ 4: ±1 (erfc(4) = 1.5e-8 is below half an ulp of 1).</li>
 *   <li>{@link #normalCdf} Φ(x) = (1 + erf(x/√2))/2 uses e^Q directly for x/√2 ≤ −1 instead of 1 + erf, so the
 *       left tail keeps its relative accuracy (≤ 6 ulp) rather than cancelling; GELU = x·Φ(x). Below
      x = −4√2 (Φ &lt; 1e-8) Φ is flushed to 0, so GELU's error there is absolute, ≤ |x|·Φ(x) &lt; 5e-8.</li>
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
  private static final float[] ERF_P = {1.1283791657322924f, -0.37612625839605585f, 0.11283585269683807f,
      -0.02685381603197315f, 0.005188334439200165f, -0.0008010247160119138f, 7.854024803963244e-05f};
  private static final float[] LOG_ERFC_Q = {-7.806815272116613f, -5.352680740471171f, -0.9438937499372875f,
      -0.010858165021418398f, 0.0021655502059114706f, -0.000420707754815397f, 7.690924182868208e-05f,
      -1.2975649217761287e-05f, 1.8604963258894713e-06f, -6.59242633815893e-08f, -4.380953289029321e-08f};
  static final float INV_SQRT2 = 0.70710678118654752f;

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

  static FloatVector erf(FloatVector x) {
    FloatVector a = x.abs();
    FloatVector r = FloatVector.broadcast(S, 1f).sub(erfcTail(a)).blend(poly(ERF_P, a.mul(a)).mul(a), a.lt(1f));
    return copySign(r, x);
  }

  /** e^{Q(a − 2.5)} ≈ erfc(a) for a in [1, 4]; a is clamped into that range, callers blend the other cases. */
  private static FloatVector erfcTail(FloatVector a) {
    return exp(poly(LOG_ERFC_Q, a.max(1f).min(4f).sub(2.5f))).blend(0f, a.compare(VectorOperators.GE, 4f));
  }

  /** Φ(x), the standard normal CDF. */
  static FloatVector normalCdf(FloatVector x) {
    FloatVector z = x.mul(INV_SQRT2);
    FloatVector a = z.abs();
    FloatVector tail = erfcTail(a).mul(0.5f);                                 // erfc(|z|)/2
    FloatVector mid = poly(ERF_P, a.mul(a)).mul(z).fma(0.5f, 0.5f);          // (1 + erf(z))/2, |z| < 1
    FloatVector right = FloatVector.broadcast(S, 1f).sub(tail);
    // NaN: every branch computes NaN from a NaN input, so it propagates without a blend of its own
    return right.blend(tail, z.compare(VectorOperators.LE, -1f)).blend(mid, a.lt(1f));
  }

  static FloatVector logErfcPoly(FloatVector t) { return poly(LOG_ERFC_Q, t); }

  static FloatVector erfSmallPoly(FloatVector t) { return poly(ERF_P, t); }

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
