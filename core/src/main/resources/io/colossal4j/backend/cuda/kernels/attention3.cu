// Third generation of the fused attention kernels (helpers in attention.cu and attention2.cu). Each warp owns
// 32 rows (two m16 tiles) instead of 16, so every fragment of the other operand read from shared memory feeds
// two tensor-core ops: half of gen 2's shared-memory reads per op and twice the independent ops in flight.
// Fragments move with ldmatrix. Forward: 128 query rows per block of 4 warps over double-buffered 64-key tiles.
// Backward (no atomics, as gen 2): dK/dV per 128-key block and dQ per 128-query block, each walking the other
// side in 16-wide steps inside double-buffered 64-row tiles. Head dims 32, 64 and 80: with more, the
// accumulators no longer fit the register file and gen 2 runs instead. The softmax's 2^x is the special-function
// unit's alone (ex2_sfu_ftz): P rounds to 16 bits, so exp2f's denormal-range fix-up buys nothing.

__device__ __forceinline__ void ldsm_x4(u32* r, const u16* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(smem_addr(p)));
}

// A fragment of rows r0 .. r0+15, columns k0 .. k0+15 of a row-major tile: lane l addresses row l%16 of the
// column half l/16, so matrices 0..3 are (rows 0-7, cols 0-7), (8-15, 0-7), (0-7, 8-15), (8-15, 8-15) = a0..a3.
__device__ __forceinline__ void lda16(u32* a, const u16* s, int ld, int r0, int k0, int lane) {
  ldsm_x4(a, s + (r0 + (lane & 15)) * ld + k0 + (lane >> 4) * 8);
}

// B fragments of the column tiles n0 and n0+8 at k-chunk k0, from a row-major [n][k] tile (the rows are B's
// columns): r[0], r[1] for n0 and r[2], r[3] for n0+8.
__device__ __forceinline__ void ldb_nk(u32* r, const u16* s, int ld, int n0, int k0, int lane) {
  ldsm_x4(r, s + (n0 + (lane & 7) + (lane >> 4) * 8) * ld + k0 + ((lane >> 3) & 1) * 8);
}

// Queues rows r0 .. r0+R-1 of a [n][D] operand into an [R][D+8] tile; rows past n are zero-filled.
template <int D, int R> __device__ __forceinline__ void rows_async(u16* s, const u16* base, i64 sn, int r0, int n) {
  const int C = D / 8;
  for (int i = threadIdx.x; i < R * C; i += blockDim.x) {
    int r = i / C, c = (i % C) * 8;
    bool ok = r0 + r < n;
    cp_async16(s + r * (D + 8) + c, ok ? base + (i64)(r0 + r) * sn + c : base, ok);
  }
}

// The K/V loop of the forward and of dQ: queues tile it+1 (K then V, [BN][D+8] each) into the other of the two
// stages at KV when there is one, then waits until tile it's loads have landed and every thread sees them.
template <int D, int BN> __device__ __forceinline__ void kv_next(u16* KV, int it, int tiles, const u16* kb, i64 ksn, const u16* vb,
                                                              i64 vsn, int nk) {
  if (it + 1 < tiles) {
    u16* nx = KV + ((it + 1) & 1) * 2 * BN * (D + 8);
    rows_async<D, BN>(nx, kb, ksn, (it + 1) * BN, nk);
    rows_async<D, BN>(nx + BN * (D + 8), vb, vsn, (it + 1) * BN, nk);
    cp_commit();
    cp_wait<1>();
  } else {
    cp_wait<0>();
  }
  __syncthreads();
}

// The A fragment (16 rows x 16 columns) of the C fragments c0 (columns 0-7) and c1 (columns 8-15), rounded.
template <bool F16> __device__ __forceinline__ void c_to_a(u32* a, const float* c0, const float* c1) {
  a[0] = pack2<F16>(c0[0], c0[1]);
  a[1] = pack2<F16>(c0[2], c0[3]);
  a[2] = pack2<F16>(c1[0], c1[1]);
  a[3] = pack2<F16>(c1[2], c1[3]);
}

// acc[mt] (rows of m16 tile mt x D columns) += a[mt] (16 x 16: k runs over rows k0 .. k0+15 of `tile`) · those rows of
// a row-major [k][D+8] tile, for both m16 tiles of a warp: every B fragment pair read once and used twice.
template <int D, bool F16> __device__ __forceinline__ void rows_mma(float (*acc)[D / 8][4], u32 (*a)[4], const u16* tile, int k0, int lane) {
#pragma unroll
  for (int np = 0; np < D / 16; np++) {
    u32 r[4];
    ldb_kn(r, tile, D + 8, k0, np * 16, lane);
#pragma unroll
    for (int mt = 0; mt < 2; mt++) {
      mma16816<F16>(acc[mt][2 * np], a[mt], r[0], r[1]);
      mma16816<F16>(acc[mt][2 * np + 1], a[mt], r[2], r[3]);
    }
  }
}

// One 64-key tile of the online softmax for one m16 tile: masks (only on edge tiles), updates the running max
// m and partial sum l (raw logit units; sl2 > 0 converts to base 2), rescales acc, and turns s into P.
template <int D> __device__ __forceinline__ void online_softmax(float (*s)[4], float* m, float* l, float (*acc)[4], bool edge,
                                                                 int k0, int nk, int causal, int rowA, int t, float sl2) {
  float mx[2] = {ATTN_NEG_INF, ATTN_NEG_INF};
#pragma unroll
  for (int nt = 0; nt < 8; nt++)
#pragma unroll
    for (int e = 0; e < 4; e++) {
      float x = s[nt][e];
      if (edge) {
        int key = k0 + nt * 8 + t * 2 + (e & 1), row = rowA + (e < 2 ? 0 : 8);
        if (key >= nk || (causal && key > row)) x = ATTN_NEG_INF;
      }
      s[nt][e] = x;
      mx[e >> 1] = fmaxf(mx[e >> 1], x);
    }
  float ms[2];
#pragma unroll
  for (int r = 0; r < 2; r++) {
    mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
    mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
    float mn = fmaxf(m[r], mx[r]);
    ms[r] = mn == ATTN_NEG_INF ? 0.f : mn * sl2;
    float alpha = ex2_sfu_ftz(m[r] * sl2 - ms[r]);
    m[r] = mn;
    l[r] *= alpha;
#pragma unroll
    for (int i = 0; i < D / 8; i++) { acc[i][2 * r] *= alpha; acc[i][2 * r + 1] *= alpha; }
  }
#pragma unroll
  for (int nt = 0; nt < 8; nt++)
#pragma unroll
    for (int e = 0; e < 4; e++) {
      float p = ex2_sfu_ftz(fmaf(s[nt][e], sl2, -ms[e >> 1]));
      s[nt][e] = p;
      l[e >> 1] += p;
    }
}

template <int D, bool F16> __device__ void attn3_fwd_impl(ARef q, ARef k, ARef v, ARef o, float* lse, int b2n, int nq, int nk,
                                                          int causal, float sl2) {
  constexpr int LD = D + 8, BM = 128, BN = 64, KC = D / 16, NC = D / 8;
  u16* Qs = (u16*)attn_smem;
  u16* KV = Qs + BM * LD;  // stage s: K at KV + 2s·BN·LD, V right after
  const int bh = blockIdx.y, b1 = bh / b2n, b2 = bh % b2n, q0 = blockIdx.x * BM;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3, w0 = q0 + warp * 32;
  const u16* qb = (const u16*)q.p + b1 * q.sb1 + b2 * q.sb2;
  const u16* kb = (const u16*)k.p + b1 * k.sb1 + b2 * k.sb2;
  const u16* vb = (const u16*)v.p + b1 * v.sb1 + b2 * v.sb2;
  const int kend = causal ? min(nk, q0 + BM) : nk, tiles = (kend + BN - 1) / BN;
  rows_async<D, BM>(Qs, qb, q.sn, q0, nq);
  rows_async<D, BN>(KV, kb, k.sn, 0, nk);
  rows_async<D, BN>(KV + BN * LD, vb, v.sn, 0, nk);
  cp_commit();
  u32 qf[2][KC][4];
  float m[2][2], l[2][2], acc[2][NC][4];
#pragma unroll
  for (int mt = 0; mt < 2; mt++) {
    m[mt][0] = m[mt][1] = ATTN_NEG_INF;
    l[mt][0] = l[mt][1] = 0.f;
#pragma unroll
    for (int i = 0; i < NC; i++) acc[mt][i][0] = acc[mt][i][1] = acc[mt][i][2] = acc[mt][i][3] = 0.f;
  }
  for (int it = 0; it < tiles; it++) {
    const int k0 = it * BN;
    const u16* Ks = KV + (it & 1) * 2 * BN * LD;
    const u16* Vs = Ks + BN * LD;
    kv_next<D, BN>(KV, it, tiles, kb, k.sn, vb, v.sn, nk);
    if (it == 0)
#pragma unroll
      for (int mt = 0; mt < 2; mt++)
#pragma unroll
        for (int kk = 0; kk < KC; kk++) lda16(qf[mt][kk], Qs, LD, warp * 32 + mt * 16, kk * 16, lane);
    if (!(causal && k0 > w0 + 31)) {  // a causal tile wholly right of this warp's rows adds nothing
      float s[2][8][4];
#pragma unroll
      for (int mt = 0; mt < 2; mt++)
#pragma unroll
        for (int nt = 0; nt < 8; nt++) s[mt][nt][0] = s[mt][nt][1] = s[mt][nt][2] = s[mt][nt][3] = 0.f;
#pragma unroll
      for (int kk = 0; kk < KC; kk++)
#pragma unroll
        for (int np = 0; np < 4; np++) {
          u32 b[4];
          ldb_nk(b, Ks, LD, np * 16, kk * 16, lane);
#pragma unroll
          for (int mt = 0; mt < 2; mt++) {
            mma16816<F16>(s[mt][2 * np], qf[mt][kk], b[0], b[1]);
            mma16816<F16>(s[mt][2 * np + 1], qf[mt][kk], b[2], b[3]);
          }
        }
#pragma unroll
      for (int mt = 0; mt < 2; mt++) {
        const bool edge = k0 + BN > nk || (causal && k0 + BN - 1 > w0 + mt * 16);
        online_softmax<D>(s[mt], m[mt], l[mt], acc[mt], edge, k0, nk, causal, w0 + mt * 16 + g, t, sl2);
      }
#pragma unroll
      for (int kk = 0; kk < 4; kk++) {
        u32 a[2][4];
#pragma unroll
        for (int mt = 0; mt < 2; mt++) c_to_a<F16>(a[mt], s[mt][2 * kk], s[mt][2 * kk + 1]);
        rows_mma<D, F16>(acc, a, Vs, kk * 16, lane);
      }
    }
    __syncthreads();
  }
  u16* ob = (u16*)o.p + b1 * o.sb1 + b2 * o.sb2;
#pragma unroll
  for (int mt = 0; mt < 2; mt++) {
    const int rowA = w0 + mt * 16 + g, rowB = rowA + 8;
#pragma unroll
    for (int r = 0; r < 2; r++) {
      l[mt][r] += __shfl_xor_sync(0xffffffffu, l[mt][r], 1);
      l[mt][r] += __shfl_xor_sync(0xffffffffu, l[mt][r], 2);
    }
    const float inv0 = 1.f / l[mt][0], inv1 = 1.f / l[mt][1];
#pragma unroll
    for (int nt = 0; nt < NC; nt++) {
      int col = nt * 8 + t * 2;
      if (rowA < nq) *(u32*)(ob + (i64)rowA * o.sn + col) = pack2<F16>(acc[mt][nt][0] * inv0, acc[mt][nt][1] * inv0);
      if (rowB < nq) *(u32*)(ob + (i64)rowB * o.sn + col) = pack2<F16>(acc[mt][nt][2] * inv1, acc[mt][nt][3] * inv1);
    }
    if (t == 0) {
      if (rowA < nq) lse[(i64)bh * nq + rowA] = (m[mt][0] * sl2 + log2f(l[mt][0])) * ATTN_LN2;
      if (rowB < nq) lse[(i64)bh * nq + rowB] = (m[mt][1] * sl2 + log2f(l[mt][1])) * ATTN_LN2;
    }
  }
}

// dK, dV for one 128-key block (32 keys per warp), over double-buffered 64-row query tiles in 16-query steps.
// The K fragments stay in registers; the V fragments too when D <= 64 (at 80 they are re-read from shared
// memory: the dK and dV accumulators take 160 registers). Adding dQ here through shared dS and f32 reductions
// (FlashAttention-2's five products instead of seven) measured slower on an H200 (2.10 vs 1.68 ms forward and
// backward at the ViT-H shape): the reductions and the two barriers per step cost more than the products saved.
template <int D, bool F16> __device__ void attn3_bwd_kv_impl(ARef q, ARef k, ARef v, ARef go, const float* lse, const float* dd,
                                                             ARef gk, ARef gv, int b2n, int nq, int nk, int causal, float sl2, float scale) {
  constexpr int LD = D + 8, BN = 128, BQ = 64, KC = D / 16, NC = D / 8;
  constexpr bool VREG = D <= 64;
  u16* Ks = (u16*)attn_smem;
  u16* Vs = Ks + BN * LD;
  u16* QO = Vs + BN * LD;                     // stage s: Q at QO + 2s·BQ·LD, dO right after
  float* stats = (float*)(QO + 4 * BQ * LD);  // stage s: lse·log2(e) at stats + 2s·BQ, Δ right after
  const int bh = blockIdx.y, b1 = bh / b2n, b2 = bh % b2n, k0 = blockIdx.x * BN;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3, w0 = k0 + warp * 32;
  const u16* qb = (const u16*)q.p + b1 * q.sb1 + b2 * q.sb2;
  const u16* kb = (const u16*)k.p + b1 * k.sb1 + b2 * k.sb2;
  const u16* vb = (const u16*)v.p + b1 * v.sb1 + b2 * v.sb2;
  const u16* gob = (const u16*)go.p + b1 * go.sb1 + b2 * go.sb2;
  const int qstart = causal ? k0 : 0, tiles = qstart < nq ? (nq - qstart + BQ - 1) / BQ : 0;
  rows_async<D, BN>(Ks, kb, k.sn, k0, nk);
  rows_async<D, BN>(Vs, vb, v.sn, k0, nk);
  if (tiles > 0) {
    rows_async<D, BQ>(QO, qb, q.sn, qstart, nq);
    rows_async<D, BQ>(QO + BQ * LD, gob, go.sn, qstart, nq);
  }
  cp_commit();
  for (int i = threadIdx.x; i < BQ; i += blockDim.x) {
    bool in = qstart + i < nq;
    stats[i] = in ? lse[(i64)bh * nq + qstart + i] * ATTN_LOG2E : 0.f;
    stats[BQ + i] = in ? dd[(i64)bh * nq + qstart + i] : 0.f;
  }
  float dk[2][NC][4], dv[2][NC][4];
#pragma unroll
  for (int mt = 0; mt < 2; mt++)
#pragma unroll
    for (int i = 0; i < NC; i++)
#pragma unroll
      for (int e = 0; e < 4; e++) dk[mt][i][e] = dv[mt][i][e] = 0.f;
  u32 kf[2][KC][4], vf[VREG ? 2 : 1][VREG ? KC : 1][4];
  for (int it = 0; it < tiles; it++) {
    const int q0 = qstart + it * BQ;
    const u16* Qs = QO + (it & 1) * 2 * BQ * LD;
    const u16* Os = Qs + BQ * LD;
    const float* ls = stats + (it & 1) * 2 * BQ;
    const float* ds = ls + BQ;
    if (it + 1 < tiles) {
      u16* nx = QO + ((it + 1) & 1) * 2 * BQ * LD;
      float* nst = stats + ((it + 1) & 1) * 2 * BQ;
      rows_async<D, BQ>(nx, qb, q.sn, q0 + BQ, nq);
      rows_async<D, BQ>(nx + BQ * LD, gob, go.sn, q0 + BQ, nq);
      cp_commit();
      for (int i = threadIdx.x; i < BQ; i += blockDim.x) {
        bool in = q0 + BQ + i < nq;
        nst[i] = in ? lse[(i64)bh * nq + q0 + BQ + i] * ATTN_LOG2E : 0.f;
        nst[BQ + i] = in ? dd[(i64)bh * nq + q0 + BQ + i] : 0.f;
      }
      cp_wait<1>();
    } else {
      cp_wait<0>();
    }
    __syncthreads();
    if (it == 0)
#pragma unroll
      for (int mt = 0; mt < 2; mt++)
#pragma unroll
        for (int kk = 0; kk < KC; kk++) {
          lda16(kf[mt][kk], Ks, LD, warp * 32 + mt * 16, kk * 16, lane);
          if (VREG) lda16(vf[mt][kk], Vs, LD, warp * 32 + mt * 16, kk * 16, lane);
        }
#pragma unroll 1
    for (int j = 0; j < BQ / 16; j++) {
      const int qj = q0 + j * 16;
      if (causal && w0 > qj + 15) continue;  // every key of this warp lies right of these queries
      float st[2][2][4], dp[2][2][4];
#pragma unroll
      for (int mt = 0; mt < 2; mt++)
#pragma unroll
        for (int nt = 0; nt < 2; nt++)
#pragma unroll
          for (int e = 0; e < 4; e++) st[mt][nt][e] = dp[mt][nt][e] = 0.f;
#pragma unroll
      for (int kk = 0; kk < KC; kk++) {
        u32 b[4], c[4];
        ldb_nk(b, Qs, LD, j * 16, kk * 16, lane);
        ldb_nk(c, Os, LD, j * 16, kk * 16, lane);
#pragma unroll
        for (int mt = 0; mt < 2; mt++) {
          mma16816<F16>(st[mt][0], kf[mt][kk], b[0], b[1]);
          mma16816<F16>(st[mt][1], kf[mt][kk], b[2], b[3]);
          u32 va[4];
          if (VREG) { va[0] = vf[mt][kk][0]; va[1] = vf[mt][kk][1]; va[2] = vf[mt][kk][2]; va[3] = vf[mt][kk][3]; }
          else lda16(va, Vs, LD, warp * 32 + mt * 16, kk * 16, lane);
          mma16816<F16>(dp[mt][0], va, c[0], c[1]);
          mma16816<F16>(dp[mt][1], va, c[2], c[3]);
        }
      }
      const bool edge = w0 + 31 >= nk || qj + 16 > nq || (causal && w0 + 31 > qj);
      u32 a[2][4];
#pragma unroll
      for (int mt = 0; mt < 2; mt++) {
#pragma unroll
        for (int nt = 0; nt < 2; nt++)
#pragma unroll
          for (int e = 0; e < 4; e++) {
            int qi = j * 16 + nt * 8 + t * 2 + (e & 1);
            float p = ex2_sfu_ftz(fmaf(st[mt][nt][e], sl2, -ls[qi]));
            if (edge) {
              int key = w0 + mt * 16 + g + (e < 2 ? 0 : 8), qrow = q0 + qi;
              if (key >= nk || qrow >= nq || (causal && key > qrow)) p = 0.f;
            }
            st[mt][nt][e] = p;
          }
        c_to_a<F16>(a[mt], st[mt][0], st[mt][1]);
      }
      rows_mma<D, F16>(dv, a, Os, j * 16, lane);  // dV += Pᵀ · dO
#pragma unroll
      for (int mt = 0; mt < 2; mt++) {  // dSᵀ = Pᵀ ∘ (dPᵀ − Δ)
#pragma unroll
        for (int nt = 0; nt < 2; nt++)
#pragma unroll
          for (int e = 0; e < 4; e++) st[mt][nt][e] *= dp[mt][nt][e] - ds[j * 16 + nt * 8 + t * 2 + (e & 1)];
        c_to_a<F16>(a[mt], st[mt][0], st[mt][1]);
      }
      rows_mma<D, F16>(dk, a, Qs, j * 16, lane);  // dK += dSᵀ · Q
    }
    __syncthreads();
  }
  u16* gkb = (u16*)gk.p + b1 * gk.sb1 + b2 * gk.sb2;
  u16* gvb = (u16*)gv.p + b1 * gv.sb1 + b2 * gv.sb2;
#pragma unroll
  for (int mt = 0; mt < 2; mt++) {
    const int keyA = w0 + mt * 16 + g, keyB = keyA + 8;
#pragma unroll
    for (int nt = 0; nt < NC; nt++) {
      int col = nt * 8 + t * 2;
      if (keyA < nk) {
        *(u32*)(gkb + (i64)keyA * gk.sn + col) = pack2<F16>(dk[mt][nt][0] * scale, dk[mt][nt][1] * scale);
        *(u32*)(gvb + (i64)keyA * gv.sn + col) = pack2<F16>(dv[mt][nt][0], dv[mt][nt][1]);
      }
      if (keyB < nk) {
        *(u32*)(gkb + (i64)keyB * gk.sn + col) = pack2<F16>(dk[mt][nt][2] * scale, dk[mt][nt][3] * scale);
        *(u32*)(gvb + (i64)keyB * gv.sn + col) = pack2<F16>(dv[mt][nt][2], dv[mt][nt][3]);
      }
    }
  }
}

// dQ for one 128-query block (32 rows per warp): recomputes S and dP over double-buffered 64-key tiles in
// 16-key steps; the Q and dO fragments stay in registers.
template <int D, bool F16> __device__ void attn3_bwd_q_impl(ARef q, ARef k, ARef v, ARef go, const float* lse, const float* dd,
                                                            ARef gq, int b2n, int nq, int nk, int causal, float sl2, float scale) {
  constexpr int LD = D + 8, BM = 128, BN = 64, KC = D / 16, NC = D / 8;
  u16* Qs = (u16*)attn_smem;
  u16* Os = Qs + BM * LD;
  u16* KV = Os + BM * LD;  // stage s: K at KV + 2s·BN·LD, V right after
  const int bh = blockIdx.y, b1 = bh / b2n, b2 = bh % b2n, q0 = blockIdx.x * BM;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3, w0 = q0 + warp * 32;
  const u16* qb = (const u16*)q.p + b1 * q.sb1 + b2 * q.sb2;
  const u16* kb = (const u16*)k.p + b1 * k.sb1 + b2 * k.sb2;
  const u16* vb = (const u16*)v.p + b1 * v.sb1 + b2 * v.sb2;
  const u16* gob = (const u16*)go.p + b1 * go.sb1 + b2 * go.sb2;
  const int kend = causal ? min(nk, q0 + BM) : nk, tiles = (kend + BN - 1) / BN;
  rows_async<D, BM>(Qs, qb, q.sn, q0, nq);
  rows_async<D, BM>(Os, gob, go.sn, q0, nq);
  rows_async<D, BN>(KV, kb, k.sn, 0, nk);
  rows_async<D, BN>(KV + BN * LD, vb, v.sn, 0, nk);
  cp_commit();
  float lrow[2][2], drow[2][2];
#pragma unroll
  for (int mt = 0; mt < 2; mt++)
#pragma unroll
    for (int r = 0; r < 2; r++) {
      int row = w0 + mt * 16 + g + r * 8;
      lrow[mt][r] = row < nq ? lse[(i64)bh * nq + row] * ATTN_LOG2E : 0.f;
      drow[mt][r] = row < nq ? dd[(i64)bh * nq + row] : 0.f;
    }
  u32 qf[2][KC][4], of[2][KC][4];
  float acc[2][NC][4];
#pragma unroll
  for (int mt = 0; mt < 2; mt++)
#pragma unroll
    for (int i = 0; i < NC; i++) acc[mt][i][0] = acc[mt][i][1] = acc[mt][i][2] = acc[mt][i][3] = 0.f;
  for (int it = 0; it < tiles; it++) {
    const int k0 = it * BN;
    const u16* Ks = KV + (it & 1) * 2 * BN * LD;
    const u16* Vs = Ks + BN * LD;
    kv_next<D, BN>(KV, it, tiles, kb, k.sn, vb, v.sn, nk);
    if (it == 0)
#pragma unroll
      for (int mt = 0; mt < 2; mt++)
#pragma unroll
        for (int kk = 0; kk < KC; kk++) {
          lda16(qf[mt][kk], Qs, LD, warp * 32 + mt * 16, kk * 16, lane);
          lda16(of[mt][kk], Os, LD, warp * 32 + mt * 16, kk * 16, lane);
        }
#pragma unroll 1
    for (int j = 0; j < BN / 16; j++) {
      const int kj = k0 + j * 16;
      if (causal && kj > w0 + 31) continue;  // keys right of every row of this warp
      float s[2][2][4], dp[2][2][4];
#pragma unroll
      for (int mt = 0; mt < 2; mt++)
#pragma unroll
        for (int nt = 0; nt < 2; nt++)
#pragma unroll
          for (int e = 0; e < 4; e++) s[mt][nt][e] = dp[mt][nt][e] = 0.f;
#pragma unroll
      for (int kk = 0; kk < KC; kk++) {
        u32 b[4], c[4];
        ldb_nk(b, Ks, LD, j * 16, kk * 16, lane);
        ldb_nk(c, Vs, LD, j * 16, kk * 16, lane);
#pragma unroll
        for (int mt = 0; mt < 2; mt++) {
          mma16816<F16>(s[mt][0], qf[mt][kk], b[0], b[1]);
          mma16816<F16>(s[mt][1], qf[mt][kk], b[2], b[3]);
          mma16816<F16>(dp[mt][0], of[mt][kk], c[0], c[1]);
          mma16816<F16>(dp[mt][1], of[mt][kk], c[2], c[3]);
        }
      }
      u32 a[2][4];
#pragma unroll
      for (int mt = 0; mt < 2; mt++) {
        const bool edge = kj + 16 > nk || (causal && kj + 15 > w0 + mt * 16);
#pragma unroll
        for (int nt = 0; nt < 2; nt++)
#pragma unroll
          for (int e = 0; e < 4; e++) {
            float p = ex2_sfu_ftz(fmaf(s[mt][nt][e], sl2, -lrow[mt][e >> 1]));
            if (edge) {
              int key = kj + nt * 8 + t * 2 + (e & 1), row = w0 + mt * 16 + g + (e < 2 ? 0 : 8);
              if (key >= nk || (causal && key > row)) p = 0.f;
            }
            s[mt][nt][e] = p * (dp[mt][nt][e] - drow[mt][e >> 1]);
          }
        c_to_a<F16>(a[mt], s[mt][0], s[mt][1]);
      }
      rows_mma<D, F16>(acc, a, Ks, j * 16, lane);  // dQ += dS · K
    }
    __syncthreads();
  }
  u16* gb = (u16*)gq.p + b1 * gq.sb1 + b2 * gq.sb2;
#pragma unroll
  for (int mt = 0; mt < 2; mt++) {
    const int rowA = w0 + mt * 16 + g, rowB = rowA + 8;
#pragma unroll
    for (int nt = 0; nt < NC; nt++) {
      int col = nt * 8 + t * 2;
      if (rowA < nq) *(u32*)(gb + (i64)rowA * gq.sn + col) = pack2<F16>(acc[mt][nt][0] * scale, acc[mt][nt][1] * scale);
      if (rowB < nq) *(u32*)(gb + (i64)rowB * gq.sn + col) = pack2<F16>(acc[mt][nt][2] * scale, acc[mt][nt][3] * scale);
    }
  }
}

#define ATTN3_ENTRIES(D, NAME, F16)                                                                                        \
  extern "C" __global__ void __launch_bounds__(128) attn3_fwd_##NAME##_##D(ARef q, ARef k, ARef v, ARef o, float* lse,       \
                                                                             int b2n, int nq, int nk, int causal, float sl2) { \
    attn3_fwd_impl<D, F16>(q, k, v, o, lse, b2n, nq, nk, causal, sl2);                                                     \
  }                                                                                                                        \
  extern "C" __global__ void __launch_bounds__(128) attn3_bwd_kv_##NAME##_##D(ARef q, ARef k, ARef v, ARef go,               \
      const float* lse, const float* dd, ARef gk, ARef gv, int b2n, int nq, int nk, int causal, float sl2, float scale) {    \
    attn3_bwd_kv_impl<D, F16>(q, k, v, go, lse, dd, gk, gv, b2n, nq, nk, causal, sl2, scale);                              \
  }                                                                                                                        \
  extern "C" __global__ void __launch_bounds__(128) attn3_bwd_q_##NAME##_##D(ARef q, ARef k, ARef v, ARef go,                \
      const float* lse, const float* dd, ARef gq, int b2n, int nq, int nk, int causal, float sl2, float scale) {             \
    attn3_bwd_q_impl<D, F16>(q, k, v, go, lse, dd, gq, b2n, nq, nk, causal, sl2, scale);                                   \
  }

ATTN3_ENTRIES(32, bf16, false)
ATTN3_ENTRIES(64, bf16, false)
ATTN3_ENTRIES(80, bf16, false)
ATTN3_ENTRIES(32, f16, true)
ATTN3_ENTRIES(64, f16, true)
ATTN3_ENTRIES(80, f16, true)
