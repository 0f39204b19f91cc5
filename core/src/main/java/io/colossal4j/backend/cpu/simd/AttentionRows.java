package io.colossal4j.backend.cpu.simd;

import static io.colossal4j.backend.cpu.simd.VMath.S;

import jdk.incubator.vector.FloatVector;

/**
 * Four weighted sums at once for {@link AttentionKernel}: out row r (r &lt; 4) = Σ_t w(r, t) · x row t, the logits,
 * the outputs and every gradient row of one attention matrix, four rows per pass so that each load of x feeds four
 * independent FMA chains (eight with two vectors per row: enough to keep both FMA pipes busy, where one row's
 * single chain waited on the FMA latency). Each output element is still one sum over t in ascending order, fused
 * multiply-adds on full vectors and multiply-then-add on the scalar tail, exactly as {@link AttentionKernel}'s
 * one-row pass computes it, so the results are the same bits.
 */
final class AttentionRows {
  private AttentionRows() {}

  private static final int L = S.length();

  /**
   * out[oo + r·os + c] = Σ_{t &lt; count} w[wo + r·wr + t·wt] · x[t·n + c] for r &lt; 4 and c &lt; n, t ascending.
   * wr/wt address w's rows and terms, so a block of rows (wr = row length, wt = 1) and a block of columns
   * (wr = 1, wt = row length) of a matrix serve as weights alike.
   */
  static void combine4(float[] w, int wo, int wr, int wt, int count, float[] x, int n, float[] out, int oo, int os) {
    int c = 0;
    for (; c + 2 * L <= n; c += 2 * L) pair(w, wo, wr, wt, count, x, n, c, out, oo, os);
    for (; c + L <= n; c += L) {
      FloatVector a0 = FloatVector.zero(S), a1 = a0, a2 = a0, a3 = a0;
      for (int t = 0, wi = wo; t < count; t++, wi += wt) {
        FloatVector x0 = FloatVector.fromArray(S, x, t * n + c);
        a0 = FloatVector.broadcast(S, w[wi]).fma(x0, a0);
        a1 = FloatVector.broadcast(S, w[wi + wr]).fma(x0, a1);
        a2 = FloatVector.broadcast(S, w[wi + 2 * wr]).fma(x0, a2);
        a3 = FloatVector.broadcast(S, w[wi + 3 * wr]).fma(x0, a3);
      }
      a0.intoArray(out, oo + c); a1.intoArray(out, oo + os + c); a2.intoArray(out, oo + 2 * os + c); a3.intoArray(out, oo + 3 * os + c);
    }
    for (; c < n; c++)
      for (int r = 0; r < 4; r++) {
        float acc = 0;
        for (int t = 0; t < count; t++) acc += w[wo + r * wr + t * wt] * x[t * n + c];
        out[oo + r * os + c] = acc;
      }
  }

  /** Columns [c, c + 2L) of the four rows: eight accumulators. */
  private static void pair(float[] w, int wo, int wr, int wt, int count, float[] x, int n, int c, float[] out, int oo, int os) {
    FloatVector a00 = FloatVector.zero(S), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
    for (int t = 0, wi = wo, xi = c; t < count; t++, wi += wt, xi += n) {
      FloatVector x0 = FloatVector.fromArray(S, x, xi), x1 = FloatVector.fromArray(S, x, xi + L);
      FloatVector b = FloatVector.broadcast(S, w[wi]);
      a00 = b.fma(x0, a00); a01 = b.fma(x1, a01);
      b = FloatVector.broadcast(S, w[wi + wr]);
      a10 = b.fma(x0, a10); a11 = b.fma(x1, a11);
      b = FloatVector.broadcast(S, w[wi + 2 * wr]);
      a20 = b.fma(x0, a20); a21 = b.fma(x1, a21);
      b = FloatVector.broadcast(S, w[wi + 3 * wr]);
      a30 = b.fma(x0, a30); a31 = b.fma(x1, a31);
    }
    int o0 = oo + c, o1 = o0 + os, o2 = o1 + os, o3 = o2 + os;
    a00.intoArray(out, o0); a01.intoArray(out, o0 + L);
    a10.intoArray(out, o1); a11.intoArray(out, o1 + L);
    a20.intoArray(out, o2); a21.intoArray(out, o2 + L);
    a30.intoArray(out, o3); a31.intoArray(out, o3 + L);
  }
}
