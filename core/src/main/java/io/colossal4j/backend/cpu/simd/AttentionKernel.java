package io.colossal4j.backend.cpu.simd;

import static io.colossal4j.backend.cpu.CpuBackend.segment;
import static io.colossal4j.backend.cpu.simd.VMath.S;

import io.colossal4j.backend.FusedAttention;
import io.colossal4j.backend.cpu.CpuParallel;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import jdk.incubator.vector.FloatVector;

/**
 * Fused scaled-dot-product attention for short sequences (a vision transformer's tokens): one task per
 * (batch, head) matrix copies its q, v rows and kᵀ into heap scratch, computes each query row's logits,
 * softmax and weighted sum of v without materialising the [N, N] probabilities, and writes the row
 * log-sum-exp; backward recomputes the probabilities from it (p = exp(s − lse)), so nothing beyond
 * the output and lse is saved. It replaces, per head, two batched GEMMs whose 17×17 and 17×32 tiles are
 * all edges, a softmax pass, and the transposed copies and gradient sums around them.
 *
 * <p>Scope ({@link #supports}): f32, no bias, no dropout, q/k/v rows with unit stride along the head dim,
 * at most {@link #MAX_KEYS} keys (longer sequences go to the composite, whose GEMMs are faster there).
 * Numerics: f32; logits are (q·k)·scale, as the composite computes them. Deterministic: each matrix is
 * computed by one thread in a fixed order, and only vertical (lane-wise) vector arithmetic and in-order
 * scalar sums are used, never {@code reduceLanes(ADD)}, whose order differs between the JIT's intrinsic and
 * the interpreter (VMath.sumLanes says the same), which would make a run depend on when code got compiled.
 *
 * <p>Legend for locals: i query row, j key row, d head dim; q_ND etc. are one matrix's rows in scratch.
 */
final class AttentionKernel implements FusedAttention {
  /** The longest key sequence this kernel takes. */
  static final int MAX_KEYS = 256;

  private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;
  private static final int L = S.length();

  private final CpuParallel par;
  private final ScratchPool scratch;

  /** Per-task matrices come from {@code scratch} (zeroed, as fresh arrays were) and go back when the task ends. */
  AttentionKernel(CpuParallel par, ScratchPool scratch) {
    this.par = par;
    this.scratch = scratch;
  }

  @Override public boolean supports(Tensor q, Tensor k, Tensor v, Tensor bias, Spec spec) {
    if (bias != null || spec.dropoutP() > 0) return false;
    for (Tensor t : new Tensor[] {q, k, v})
      if (t.dtype() != DType.F32 || t.rank() < 2 || (t.stride(-1) != 1 && t.size(-1) != 1)) return false;
    return k.size(-2) >= 1 && k.size(-2) <= MAX_KEYS && q.size(-1) <= 1024 && v.size(-1) <= 1024;
  }

  /** Outputs are addressed by their strides, rows and matrices alike. */
  @Override public boolean writesStridedOutputs() { return true; }

  /** One matrix's geometry: sizes and the element offset of each operand's matrix for a batch index. */
  private record Geo(int nq, int nk, int d, int dv, long batches) {
    static Geo of(Tensor q, Tensor k, Tensor v) {
      return new Geo(q.size(-2), k.size(-2), q.size(-1), v.size(-1), q.numel() / ((long) q.size(-2) * q.size(-1)));
    }
  }

  /** Element offset of matrix {@code b} (row-major over the batch dims) of t [..., rows, cols]. */
  private static long matrixOffset(Tensor t, long b) {
    long off = t.offset();
    for (int dim = t.rank() - 3; dim >= 0; dim--) {
      int size = t.size(dim);
      off += (b % size) * t.stride(dim);
      b /= size;
    }
    return off;
  }

  /**
   * Runs body over the matrices in about four chunks per thread (at least {@link #grain} matrices each), taken from a
   * shared counter ({@link CpuParallel#forEachChunk}), so a worker the busy machine has descheduled holds nothing up.
   */
  private void forChunks(Geo g, CpuParallel.RangeBody body) {
    long n = g.batches(), per = Math.max(grain(g), n / (4L * par.threads()));
    par.forEachChunk((n + per - 1) / per, c -> body.run(c * per, Math.min(n, c * per + per)));
  }

  private static long grain(Geo g) { return Math.max(1, (1L << 15) / Math.max(1L, (long) g.nq() * g.nk() * (g.d() + g.dv()))); }

  @Override public void forward(Tensor q, Tensor k, Tensor v, Tensor bias, Spec spec, Tensor out, Tensor logSumExp) {
    Geo g = Geo.of(q, k, v);
    float scale = (float) spec.scale();
    int nkp = padded(g.nk());
    MemorySegment so = segment(out), sl = segment(logSumExp);
    forChunks(g, (b0, b1) -> {
      float[] q_ND = scratch.zeroed(g.nq() * g.d()), k_ND = scratch.zeroed(g.nk() * g.d()), kT_DN = scratch.zeroed(g.d() * nkp);
      float[] v_ND = scratch.zeroed(g.nk() * g.dv()), s = scratch.zeroed(nkp), o = scratch.zeroed(g.dv());
      float[] s4 = scratch.zeroed(4 * nkp), o4 = scratch.zeroed(4 * g.dv()), inv4 = scratch.zeroed(4);
      for (long b = b0; b < b1; b++) {
        load(q, b, q_ND);
        load(k, b, k_ND);
        transpose(k_ND, g.nk(), g.d(), kT_DN, nkp);
        load(v, b, v_ND);
        long oOff = matrixOffset(out, b), lOff = logSumExp.offset() + b * g.nq();
        int i = 0;
        if (!spec.causal())
          for (; i + 4 <= g.nq(); i += 4) forwardRows4(g, i, q_ND, kT_DN, v_ND, nkp, scale, s4, o4, inv4, so, oOff, out.stride(-2), sl, lOff);
        for (; i < g.nq(); i++) {
          int nj = visible(spec, i, g.nk());
          float max = logits(q_ND, i, g.d(), kT_DN, nkp, nj, scale, s);
          exp(s, nj, max);
          float sum = 0;
          for (int j = 0; j < nj; j++) sum += s[j];   // in order: the same sum whichever way the JIT compiled us
          combine(s, 0, 1, nj, v_ND, g.dv(), o, 0);
          float inv = 1f / sum;
          long row = oOff + i * out.stride(-2);
          for (int d = 0; d < g.dv(); d++) so.setAtIndex(F, row + d, o[d] * inv);
          sl.setAtIndex(F, lOff + i, max + (float) Math.log(sum));
        }
      }
      scratch.give(q_ND, k_ND, kT_DN, v_ND, s, o, s4, o4, inv4);
    });
  }

  /**
   * Query rows i..i+3 of one matrix without a causal mask (every row sees all nk keys): their logits, softmax and
   * weighted sums of v in two four-row passes ({@link AttentionRows#combine4}); each value equals the one-row pass's.
   */
  private static void forwardRows4(Geo g, int i, float[] q_ND, float[] kT_DN, float[] v_ND, int nkp, float scale, float[] s4, float[] o4,
                                   float[] inv, MemorySegment so, long oOff, long oRs, MemorySegment sl, long lOff) {
    int nk = g.nk(), dv = g.dv();
    AttentionRows.combine4(q_ND, i * g.d(), g.d(), 1, g.d(), kT_DN, nkp, s4, 0, nkp);
    for (int r = 0; r < 4; r++) {
      int at = r * nkp;
      float max = Float.NEGATIVE_INFINITY;
      for (int j = 0; j < nk; j++) {
        s4[at + j] *= scale;
        max = Math.max(max, s4[at + j]);
      }
      for (int j = 0; j < nk; j += L) VMath.exp(FloatVector.fromArray(S, s4, at + j).sub(max)).intoArray(s4, at + j);
      float sum = 0;
      for (int j = 0; j < nk; j++) sum += s4[at + j];   // in order, as the one-row pass
      inv[r] = 1f / sum;
      sl.setAtIndex(F, lOff + i + r, max + (float) Math.log(sum));
    }
    AttentionRows.combine4(s4, 0, nkp, 1, nk, v_ND, dv, o4, 0, dv);
    for (int r = 0; r < 4; r++) {
      long row = oOff + (i + r) * oRs;
      for (int d = 0; d < dv; d++) so.setAtIndex(F, row + d, o4[r * dv + d] * inv[r]);
    }
  }

  /** Keys visible from query i: all, or j ≤ i when causal (top-left aligned). */
  private static int visible(Spec spec, int i, int nk) { return spec.causal() ? Math.min(i + 1, nk) : nk; }

  private static int padded(int n) { return (n + L - 1) / L * L; }

  /**
   * s[0..nkp) = (q_i · k_j)·scale for every key j, computed down the columns of kᵀ (vertical FMAs only: no
   * horizontal sums, whose rounding would depend on whether the JIT intrinsified them); returns the max over
   * the visible keys j &lt; nj.
   */
  private static float logits(float[] q_ND, int i, int d, float[] kT_DN, int nkp, int nj, float scale, float[] s) {
    rowTimes(q_ND, i * d, d, kT_DN, nkp, s);
    float max = Float.NEGATIVE_INFINITY;
    for (int j = 0; j < nj; j++) {
      s[j] *= scale;
      max = Math.max(max, s[j]);
    }
    return max;
  }

  /** out[0..n) = Σ_d a[ao + d] · mT[d·n ..]: a row vector times a matrix stored [d][n], n a multiple of L. */
  private static void rowTimes(float[] a, int ao, int d, float[] mT, int n, float[] out) {
    for (int j = 0; j < n; j += L) {
      FloatVector acc = FloatVector.zero(S);
      for (int c = 0; c < d; c++) acc = FloatVector.broadcast(S, a[ao + c]).fma(FloatVector.fromArray(S, mT, c * n + j), acc);
      acc.intoArray(out, j);
    }
  }

  /** s[j] = e^{s[j] − shift} for j &lt; nj (the padded tail is computed and ignored). */
  private static void exp(float[] s, int nj, float shift) {
    for (int j = 0; j < nj; j += L) VMath.exp(FloatVector.fromArray(S, s, j).sub(shift)).intoArray(s, j);
  }

  @Override public void backward(Tensor gOut, Tensor q, Tensor k, Tensor v, Tensor bias, Tensor out, Tensor logSumExp, Spec spec,
                                 Tensor gq, Tensor gk, Tensor gv, Tensor gBias) {
    Geo g = Geo.of(q, k, v);
    float scale = (float) spec.scale();
    int nkp = padded(g.nk());
    MemorySegment sl = segment(logSumExp);
    boolean unitOut = gOut.stride(-1) == 1 || gOut.size(-1) == 1;
    Tensor go = unitOut ? gOut : contiguous(gOut);
    forChunks(g, (b0, b1) -> {
      float[] q_ND = scratch.zeroed(g.nq() * g.d()), k_ND = scratch.zeroed(g.nk() * g.d()), kT_DN = scratch.zeroed(g.d() * nkp);
      float[] v_ND = scratch.zeroed(g.nk() * g.dv()), vT_DN = scratch.zeroed(g.dv() * nkp), go_ND = scratch.zeroed(g.nq() * g.dv());
      float[] o_ND = scratch.zeroed(g.nq() * g.dv()), gq_ND = scratch.zeroed(g.nq() * g.d()), gk_ND = scratch.zeroed(g.nk() * g.d());
      float[] gv_ND = scratch.zeroed(g.nk() * g.dv()), p = scratch.zeroed(nkp), dp = scratch.zeroed(nkp), dp4 = scratch.zeroed(4 * nkp);
      float[] p_NN = scratch.zeroed(g.nq() * nkp), ds_NN = scratch.zeroed(g.nq() * nkp);
      for (long b = b0; b < b1; b++) {
        load(q, b, q_ND);
        load(k, b, k_ND);
        transpose(k_ND, g.nk(), g.d(), kT_DN, nkp);
        load(v, b, v_ND);
        transpose(v_ND, g.nk(), g.dv(), vT_DN, nkp);
        load(go, b, go_ND);
        load(out, b, o_ND);
        java.util.Arrays.fill(p_NN, 0f);
        java.util.Arrays.fill(ds_NN, 0f);
        long lOff = logSumExp.offset() + b * g.nq();
        int i0 = 0;
        if (!spec.causal())
          for (; i0 + 4 <= g.nq(); i0 += 4) backwardRows4(g, i0, q_ND, kT_DN, vT_DN, go_ND, o_ND, nkp, scale, sl, lOff, dp4, p_NN, ds_NN);
        for (int i = i0; i < g.nq(); i++) {   // row i of p and of ds = p·(dp − Di)·scale
          int nj = visible(spec, i, g.nk());
          logits(q_ND, i, g.d(), kT_DN, nkp, nj, scale, p);
          exp(p, nj, sl.getAtIndex(F, lOff + i));                  // p_ij = e^{s_ij − lse_i}
          rowTimes(go_ND, i * g.dv(), g.dv(), vT_DN, nkp, dp);    // dp_ij = gO_i · v_j
          float di = 0;
          for (int d = 0; d < g.dv(); d++) di += go_ND[i * g.dv() + d] * o_ND[i * g.dv() + d];
          for (int j = 0; j < nj; j++) {
            p_NN[i * nkp + j] = p[j];
            ds_NN[i * nkp + j] = p[j] * (dp[j] - di) * scale;
          }
        }
        // each gradient row summed in registers, in the order the row-by-row updates would add its terms
        int i = 0, j0 = 0;
        for (; i + 4 <= g.nq(); i += 4) AttentionRows.combine4(ds_NN, i * nkp, nkp, 1, g.nk(), k_ND, g.d(), gq_ND, i * g.d(), g.d());
        for (; i < g.nq(); i++) combine(ds_NN, i * nkp, 1, g.nk(), k_ND, g.d(), gq_ND, i * g.d());        // gq_i = Σ_j ds_ij k_j
        for (; j0 + 4 <= g.nk(); j0 += 4) {
          AttentionRows.combine4(ds_NN, j0, 1, nkp, g.nq(), q_ND, g.d(), gk_ND, j0 * g.d(), g.d());
          AttentionRows.combine4(p_NN, j0, 1, nkp, g.nq(), go_ND, g.dv(), gv_ND, j0 * g.dv(), g.dv());
        }
        for (int j = j0; j < g.nk(); j++) {
          combine(ds_NN, j, nkp, g.nq(), q_ND, g.d(), gk_ND, j * g.d());       // gk_j = Σ_i ds_ij q_i
          combine(p_NN, j, nkp, g.nq(), go_ND, g.dv(), gv_ND, j * g.dv());     // gv_j = Σ_i p_ij gO_i
        }
        store(gq_ND, gq, b);
        store(gk_ND, gk, b);
        store(gv_ND, gv, b);
      }
      scratch.give(q_ND, k_ND, kT_DN, v_ND, vT_DN, go_ND, o_ND, gq_ND, gk_ND, gv_ND, p, dp, dp4, p_NN, ds_NN);
    });
  }

  /**
   * Rows i..i+3 of p and ds = p·(dp − Di)·scale for one matrix without a causal mask, in four-row passes for the
   * logits and for dp = gO·vᵀ; each value equals the one-row pass's. Columns ≥ nk of p_NN and ds_NN stay zero.
   */
  private static void backwardRows4(Geo g, int i, float[] q_ND, float[] kT_DN, float[] vT_DN, float[] go_ND, float[] o_ND, int nkp,
                                    float scale, MemorySegment sl, long lOff, float[] dp4, float[] p_NN, float[] ds_NN) {
    int nk = g.nk(), dv = g.dv();
    AttentionRows.combine4(q_ND, i * g.d(), g.d(), 1, g.d(), kT_DN, nkp, p_NN, i * nkp, nkp);
    AttentionRows.combine4(go_ND, i * dv, dv, 1, dv, vT_DN, nkp, dp4, 0, nkp);
    for (int r = 0; r < 4; r++) {
      int at = (i + r) * nkp;
      for (int j = 0; j < nk; j++) p_NN[at + j] *= scale;
      float lse = sl.getAtIndex(F, lOff + i + r);
      for (int j = 0; j < nk; j += L) VMath.exp(FloatVector.fromArray(S, p_NN, at + j).sub(lse)).intoArray(p_NN, at + j);
      java.util.Arrays.fill(p_NN, at + nk, at + nkp, 0f);
      float di = 0;
      for (int d = 0; d < dv; d++) di += go_ND[(i + r) * dv + d] * o_ND[(i + r) * dv + d];
      for (int j = 0; j < nk; j++) ds_NN[at + j] = p_NN[at + j] * (dp4[r * nkp + j] - di) * scale;
    }
  }

  private static Tensor contiguous(Tensor t) {
    Tensor c = Tensor.empty(t.shape(), t.dtype(), t.backend());
    t.backend().kernels().copy(t, c);
    return c;
  }

  /** Copies matrix b of t [..., rows, cols] (unit stride along cols) into dst [rows][cols]. */
  private static void load(Tensor t, long b, float[] dst) {
    MemorySegment seg = segment(t);
    int rows = t.size(-2), cols = t.size(-1);
    long off = matrixOffset(t, b), rs = t.stride(-2);
    for (int r = 0; r < rows; r++) MemorySegment.copy(seg, F, (off + r * rs) * 4, dst, r * cols, cols);
  }

  /** Writes src [rows][cols] into matrix b of t (unit stride along cols). */
  private static void store(float[] src, Tensor t, long b) {
    if (t.stride(-1) != 1 && t.size(-1) != 1) throw new IllegalStateException("attention gradient outputs need unit stride along the head dim, got " + t);
    MemorySegment seg = segment(t);
    int rows = t.size(-2), cols = t.size(-1);
    long off = matrixOffset(t, b), rs = t.stride(-2);
    for (int r = 0; r < rows; r++) MemorySegment.copy(src, r * cols, seg, F, (off + r * rs) * 4, cols);
  }

  /** dst[c·ld + r] = src[r·cols + c] for the rows × cols matrix src; columns r ≥ rows of dst zero. */
  private static void transpose(float[] src, int rows, int cols, float[] dst, int ld) {
    java.util.Arrays.fill(dst, 0f);
    for (int r = 0; r < rows; r++)
      for (int c = 0; c < cols; c++) dst[c * ld + r] = src[r * cols + c];
  }

  /**
   * out[oo + c] = Σ_{t &lt; count} w[wo + t·ws] · x[t·n + c] for c &lt; n, t ascending: a weighted sum of count rows
   * of x [count][n], accumulated in registers (fused multiply-adds on full vectors; on the tail, multiply then add).
   */
  private static void combine(float[] w, int wo, int ws, int count, float[] x, int n, float[] out, int oo) {
    int c = 0;
    for (; c + L <= n; c += L) {
      FloatVector acc = FloatVector.zero(S);
      for (int t = 0; t < count; t++) acc = FloatVector.broadcast(S, w[wo + t * ws]).fma(FloatVector.fromArray(S, x, t * n + c), acc);
      acc.intoArray(out, oo + c);
    }
    for (; c < n; c++) {
      float acc = 0;
      for (int t = 0; t < count; t++) acc += w[wo + t * ws] * x[t * n + c];
      out[oo + c] = acc;
    }
  }
}
