package io.colossal4j.backend.cpu.simd;

import static io.colossal4j.backend.cpu.simd.SkinnyGemm.L;
import static io.colossal4j.backend.cpu.simd.SkinnyGemm.S;
import static io.colossal4j.backend.cpu.simd.SkinnyGemm.W;

import jdk.incubator.vector.FloatVector;

/**
 * The tile kernel of {@link SkinnyGemm}: a 4 × W block of C (W = 4 vectors) in 16 vector registers, updated by
 * one rank-1 product per k step: 4 vector loads of the packed B sliver, 4 broadcasts of A, 16 FMAs. A is read in
 * place through two strides, so one kernel serves a row-major A (row stride k, step 1) and a transposed one
 * (the weight gradient's gᵀ: row stride 1, step n). Written out by hand: the JIT keeps only straight-line vector
 * locals in registers.
 */
final class SkinnyTile {
  private SkinnyTile() {}

  /**
   * out[oOff + r·oRs + c] = init[iOff + c] (or 0 when init is null) + Σ_p a[aOff + r·ars + p·aps] · b[bOff + p·W + c]
   * for r < 4, c < W, p < k. Every one of those a and b elements must exist (callers pad with zeros).
   */
  static void tile(float[] a, int aOff, int ars, int aps, float[] b, int bOff, int k, float[] init, int iOff,
                   float[] out, int oOff, int oRs) {
    FloatVector c00, c01, c02, c03;
    if (init == null) {
      c00 = FloatVector.zero(S); c01 = c00; c02 = c00; c03 = c00;
    } else {
      c00 = FloatVector.fromArray(S, init, iOff); c01 = FloatVector.fromArray(S, init, iOff + L);
      c02 = FloatVector.fromArray(S, init, iOff + 2 * L); c03 = FloatVector.fromArray(S, init, iOff + 3 * L);
    }
    FloatVector c10 = c00, c11 = c01, c12 = c02, c13 = c03, c20 = c00, c21 = c01, c22 = c02, c23 = c03;
    FloatVector c30 = c00, c31 = c01, c32 = c02, c33 = c03;
    int r1 = ars, r2 = 2 * ars, r3 = 3 * ars;
    for (int p = 0, ai = aOff, bi = bOff; p < k; p++, ai += aps, bi += W) {
      FloatVector b0 = FloatVector.fromArray(S, b, bi), b1 = FloatVector.fromArray(S, b, bi + L);
      FloatVector b2 = FloatVector.fromArray(S, b, bi + 2 * L), b3 = FloatVector.fromArray(S, b, bi + 3 * L);
      FloatVector x = FloatVector.broadcast(S, a[ai]);
      c00 = x.fma(b0, c00); c01 = x.fma(b1, c01); c02 = x.fma(b2, c02); c03 = x.fma(b3, c03);
      x = FloatVector.broadcast(S, a[ai + r1]);
      c10 = x.fma(b0, c10); c11 = x.fma(b1, c11); c12 = x.fma(b2, c12); c13 = x.fma(b3, c13);
      x = FloatVector.broadcast(S, a[ai + r2]);
      c20 = x.fma(b0, c20); c21 = x.fma(b1, c21); c22 = x.fma(b2, c22); c23 = x.fma(b3, c23);
      x = FloatVector.broadcast(S, a[ai + r3]);
      c30 = x.fma(b0, c30); c31 = x.fma(b1, c31); c32 = x.fma(b2, c32); c33 = x.fma(b3, c33);
    }
    int o0 = oOff, o1 = o0 + oRs, o2 = o1 + oRs, o3 = o2 + oRs;
    c00.intoArray(out, o0); c01.intoArray(out, o0 + L); c02.intoArray(out, o0 + 2 * L); c03.intoArray(out, o0 + 3 * L);
    c10.intoArray(out, o1); c11.intoArray(out, o1 + L); c12.intoArray(out, o1 + 2 * L); c13.intoArray(out, o1 + 3 * L);
    c20.intoArray(out, o2); c21.intoArray(out, o2 + L); c22.intoArray(out, o2 + 2 * L); c23.intoArray(out, o2 + 3 * L);
    c30.intoArray(out, o3); c31.intoArray(out, o3 + L); c32.intoArray(out, o3 + 2 * L); c33.intoArray(out, o3 + 3 * L);
  }
}
