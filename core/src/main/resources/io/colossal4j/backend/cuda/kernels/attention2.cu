// Second generation of the fused attention kernels (helpers in attention.cu): tiles move global -> shared
// with cp.async, double-buffered, so the next tile's loads overlap this tile's tensor-core work; masks
// are applied only on tiles that cross the sequence end or the causal diagonal; and the backward is split
// in two kernels without atomics: one per key tile writes dK and dV, one per query tile recomputes P and dS
// and writes dQ (two extra products, no f32 dQ buffer, no conversion pass).

__device__ __forceinline__ void cp_async16(u16* s, const u16* g, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(s)), "l"(g), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cp_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

// Queues rows r0 .. r0+63 of a [n][D] operand into a [64][D+8] tile; rows past n are zero-filled.
template <int D> __device__ __forceinline__ void tile_async(u16* s, const u16* base, i64 sn, int r0, int n) {
  const int C = D / 8;
  for (int i = threadIdx.x; i < 64 * C; i += blockDim.x) {
    int r = i / C, c = (i % C) * 8;
    bool ok = r0 + r < n;
    cp_async16(s + r * (D + 8) + c, ok ? base + (i64)(r0 + r) * sn + c : base, ok);
  }
}

// S (16 rows of this warp x 64 columns) += A-rows · B-rowsᵀ: A fragments in registers, B from a [64][D+8] tile.
template <int D, bool F16> __device__ __forceinline__ void qkt(float (*s)[4], const u32 (*af)[4], const u16* bs, int g, int t) {
  const int LD = D + 8;
#pragma unroll
  for (int kk = 0; kk < D / 16; kk++)
#pragma unroll
    for (int nt = 0; nt < 8; nt++) {
      const u16* p = bs + (nt * 8 + g) * LD + kk * 16 + t * 2;
      mma16816<F16>(s[nt], af[kk], lds32(p), lds32(p + 8));
    }
}

// acc (16 x D) += P (16 x 64, C fragments in s) · B (a [64][D+8] tile, rows = the 64 columns of P).
template <int D, bool F16> __device__ __forceinline__ void pv(float (*acc)[4], float (*s)[4], const u16* bs, int lane) {
#pragma unroll
  for (int kk = 0; kk < 4; kk++) {
    u32 a[4] = {pack2<F16>(s[2 * kk][0], s[2 * kk][1]), pack2<F16>(s[2 * kk][2], s[2 * kk][3]),
                pack2<F16>(s[2 * kk + 1][0], s[2 * kk + 1][1]), pack2<F16>(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
    for (int np = 0; np < D / 16; np++) {
      u32 r[4];
      ldb_kn(r, bs, D + 8, kk * 16, np * 16, lane);
      mma16816<F16>(acc[2 * np], a, r[0], r[1]);
      mma16816<F16>(acc[2 * np + 1], a, r[2], r[3]);
    }
  }
}

template <int D, bool F16> __device__ void attn2_fwd_impl(ARef q, ARef k, ARef v, ARef o, float* lse, int b2n, int nq, int nk,
                                                          int causal, float sl2) {
  const int LD = D + 8;
  u16* Qs = (u16*)attn_smem;
  u16* KV = Qs + 64 * LD;  // stage s: K at KV + 2s·64·LD, V right after
  const int bh = blockIdx.y, b1 = bh / b2n, b2 = bh % b2n, q0 = blockIdx.x * 64;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const u16* qb = (const u16*)q.p + b1 * q.sb1 + b2 * q.sb2;
  const u16* kb = (const u16*)k.p + b1 * k.sb1 + b2 * k.sb2;
  const u16* vb = (const u16*)v.p + b1 * v.sb1 + b2 * v.sb2;
  const int kend = causal ? min(nk, q0 + 64) : nk, tiles = (kend + 63) / 64;
  tile_async<D>(Qs, qb, q.sn, q0, nq);
  tile_async<D>(KV, kb, k.sn, 0, nk);
  tile_async<D>(KV + 64 * LD, vb, v.sn, 0, nk);
  cp_commit();
  u32 qf[D / 16][4];
  float mrow[2] = {ATTN_NEG_INF, ATTN_NEG_INF}, lrow[2] = {0.f, 0.f};
  float acc[D / 8][4];
#pragma unroll
  for (int i = 0; i < D / 8; i++) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.f;
  const int rowA = q0 + warp * 16 + g, rowB = rowA + 8;
  for (int it = 0; it < tiles; it++) {
    const int k0 = it * 64;
    const u16* Ks = KV + (it & 1) * 2 * 64 * LD;
    const u16* Vs = Ks + 64 * LD;
    if (it + 1 < tiles) {
      u16* nx = KV + ((it + 1) & 1) * 2 * 64 * LD;
      tile_async<D>(nx, kb, k.sn, k0 + 64, nk);
      tile_async<D>(nx + 64 * LD, vb, v.sn, k0 + 64, nk);
      cp_commit();
      cp_wait<1>();
    } else {
      cp_wait<0>();
    }
    __syncthreads();
    if (it == 0)
#pragma unroll
      for (int kk = 0; kk < D / 16; kk++) lda(qf[kk], Qs + warp * 16 * LD, LD, kk, g, t);
    float s[8][4];
#pragma unroll
    for (int nt = 0; nt < 8; nt++) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;
    qkt<D, F16>(s, qf, Ks, g, t);
    const bool edge = k0 + 64 > nk || (causal && k0 + 63 > q0 + warp * 16);
    float mx[2] = {ATTN_NEG_INF, ATTN_NEG_INF};
#pragma unroll
    for (int nt = 0; nt < 8; nt++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        float x = s[nt][e] * sl2;
        if (edge) {
          int key = k0 + nt * 8 + t * 2 + (e & 1), row = e < 2 ? rowA : rowB;
          if (key >= nk || (causal && key > row)) x = ATTN_NEG_INF;
        }
        s[nt][e] = x;
        mx[e >> 1] = fmaxf(mx[e >> 1], x);
      }
    float msafe[2];
#pragma unroll
    for (int r = 0; r < 2; r++) {
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
      float mn = fmaxf(mrow[r], mx[r]);
      msafe[r] = mn == ATTN_NEG_INF ? 0.f : mn;
      float alpha = exp2f(mrow[r] - msafe[r]);
      mrow[r] = mn;
      lrow[r] *= alpha;
#pragma unroll
      for (int i = 0; i < D / 8; i++) { acc[i][2 * r] *= alpha; acc[i][2 * r + 1] *= alpha; }
    }
#pragma unroll
    for (int nt = 0; nt < 8; nt++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        float p = exp2f(s[nt][e] - msafe[e >> 1]);
        s[nt][e] = p;
        lrow[e >> 1] += p;
      }
    pv<D, F16>(acc, s, Vs, lane);
    __syncthreads();
  }
  u16* ob = (u16*)o.p + b1 * o.sb1 + b2 * o.sb2;
#pragma unroll
  for (int r = 0; r < 2; r++) {
    lrow[r] += __shfl_xor_sync(0xffffffffu, lrow[r], 1);
    lrow[r] += __shfl_xor_sync(0xffffffffu, lrow[r], 2);
  }
  float inv0 = 1.f / lrow[0], inv1 = 1.f / lrow[1];
#pragma unroll
  for (int nt = 0; nt < D / 8; nt++) {
    int col = nt * 8 + t * 2;
    if (rowA < nq) *(u32*)(ob + (i64)rowA * o.sn + col) = pack2<F16>(acc[nt][0] * inv0, acc[nt][1] * inv0);
    if (rowB < nq) *(u32*)(ob + (i64)rowB * o.sn + col) = pack2<F16>(acc[nt][2] * inv1, acc[nt][3] * inv1);
  }
  if (t == 0) {
    if (rowA < nq) lse[(i64)bh * nq + rowA] = (mrow[0] + log2f(lrow[0])) * ATTN_LN2;
    if (rowB < nq) lse[(i64)bh * nq + rowB] = (mrow[1] + log2f(lrow[1])) * ATTN_LN2;
  }
}

// dK, dV for one 64-key tile (16 keys per warp), looping over double-buffered query tiles.
template <int D, bool F16> __device__ void attn2_bwd_kv_impl(ARef q, ARef k, ARef v, ARef go, const float* lse, const float* dd,
                                                             ARef gk, ARef gv, int b2n, int nq, int nk, int causal, float sl2, float scale) {
  const int LD = D + 8;
  u16* Ks = (u16*)attn_smem;
  u16* Vs = Ks + 64 * LD;
  u16* QO = Vs + 64 * LD;                       // stage s: Q at QO + 2s·64·LD, dO right after
  float* stats = (float*)(QO + 4 * 64 * LD);    // stage s: lse at stats + 128s, dd at stats + 128s + 64
  const int bh = blockIdx.y, b1 = bh / b2n, b2 = bh % b2n, k0 = blockIdx.x * 64;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const u16* qb = (const u16*)q.p + b1 * q.sb1 + b2 * q.sb2;
  const u16* kb = (const u16*)k.p + b1 * k.sb1 + b2 * k.sb2;
  const u16* vb = (const u16*)v.p + b1 * v.sb1 + b2 * v.sb2;
  const u16* gob = (const u16*)go.p + b1 * go.sb1 + b2 * go.sb2;
  const int qstart = causal ? k0 : 0, tiles = qstart < nq ? (nq - qstart + 63) / 64 : 0;
  tile_async<D>(Ks, kb, k.sn, k0, nk);
  tile_async<D>(Vs, vb, v.sn, k0, nk);
  if (tiles > 0) {
    tile_async<D>(QO, qb, q.sn, qstart, nq);
    tile_async<D>(QO + 64 * LD, gob, go.sn, qstart, nq);
  }
  cp_commit();
  for (int i = threadIdx.x; i < 64; i += blockDim.x) {
    bool in = qstart + i < nq;
    stats[i] = in ? lse[(i64)bh * nq + qstart + i] * ATTN_LOG2E : 0.f;
    stats[64 + i] = in ? dd[(i64)bh * nq + qstart + i] : 0.f;
  }
  const int keyA = k0 + warp * 16 + g, keyB = keyA + 8;
  float dk[D / 8][4], dv[D / 8][4];
#pragma unroll
  for (int i = 0; i < D / 8; i++)
#pragma unroll
    for (int e = 0; e < 4; e++) dk[i][e] = dv[i][e] = 0.f;
  u32 af[D / 16][4];  // K, then V rows of this warp as A fragments (reloaded per tile: registers go to dK, dV)
  for (int it = 0; it < tiles; it++) {
    const int q0 = qstart + it * 64;
    const u16* Qs = QO + (it & 1) * 2 * 64 * LD;
    const u16* Os = Qs + 64 * LD;
    const float* ls = stats + (it & 1) * 128;
    const float* ds = ls + 64;
    if (it + 1 < tiles) {
      u16* nx = QO + ((it + 1) & 1) * 2 * 64 * LD;
      float* nst = stats + ((it + 1) & 1) * 128;
      tile_async<D>(nx, qb, q.sn, q0 + 64, nq);
      tile_async<D>(nx + 64 * LD, gob, go.sn, q0 + 64, nq);
      cp_commit();
      for (int i = threadIdx.x; i < 64; i += blockDim.x) {
        bool in = q0 + 64 + i < nq;
        nst[i] = in ? lse[(i64)bh * nq + q0 + 64 + i] * ATTN_LOG2E : 0.f;
        nst[64 + i] = in ? dd[(i64)bh * nq + q0 + 64 + i] : 0.f;
      }
      cp_wait<1>();
    } else {
      cp_wait<0>();
    }
    __syncthreads();
    float st[8][4], dp[8][4];
#pragma unroll
    for (int nt = 0; nt < 8; nt++)
#pragma unroll
      for (int e = 0; e < 4; e++) st[nt][e] = dp[nt][e] = 0.f;
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++) lda(af[kk], Ks + warp * 16 * LD, LD, kk, g, t);
    qkt<D, F16>(st, af, Qs, g, t);
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++) lda(af[kk], Vs + warp * 16 * LD, LD, kk, g, t);
    qkt<D, F16>(dp, af, Os, g, t);
    const bool edge = keyB >= nk || q0 + 64 > nq || (causal && k0 + warp * 16 + 15 > q0);
#pragma unroll
    for (int nt = 0; nt < 8; nt++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        int qi = nt * 8 + t * 2 + (e & 1);
        float p = exp2f(st[nt][e] * sl2 - ls[qi]);
        if (edge) {
          int key = e < 2 ? keyA : keyB, qrow = q0 + qi;
          if (key >= nk || qrow >= nq || (causal && key > qrow)) p = 0.f;
        }
        st[nt][e] = p;
      }
    pv<D, F16>(dv, st, Os, lane);
#pragma unroll
    for (int nt = 0; nt < 8; nt++)
#pragma unroll
      for (int e = 0; e < 4; e++) st[nt][e] *= dp[nt][e] - ds[nt * 8 + t * 2 + (e & 1)];
    pv<D, F16>(dk, st, Qs, lane);
    __syncthreads();
  }
  u16* gkb = (u16*)gk.p + b1 * gk.sb1 + b2 * gk.sb2;
  u16* gvb = (u16*)gv.p + b1 * gv.sb1 + b2 * gv.sb2;
#pragma unroll
  for (int nt = 0; nt < D / 8; nt++) {
    int col = nt * 8 + t * 2;
    if (keyA < nk) {
      *(u32*)(gkb + (i64)keyA * gk.sn + col) = pack2<F16>(dk[nt][0] * scale, dk[nt][1] * scale);
      *(u32*)(gvb + (i64)keyA * gv.sn + col) = pack2<F16>(dv[nt][0], dv[nt][1]);
    }
    if (keyB < nk) {
      *(u32*)(gkb + (i64)keyB * gk.sn + col) = pack2<F16>(dk[nt][2] * scale, dk[nt][3] * scale);
      *(u32*)(gvb + (i64)keyB * gv.sn + col) = pack2<F16>(dv[nt][2], dv[nt][3]);
    }
  }
}

// dQ for one 64-row query tile (16 rows per warp): recomputes S and dP over double-buffered key tiles.
template <int D, bool F16> __device__ void attn2_bwd_q_impl(ARef q, ARef k, ARef v, ARef go, const float* lse, const float* dd,
                                                            ARef gq, int b2n, int nq, int nk, int causal, float sl2, float scale) {
  const int LD = D + 8;
  u16* Qs = (u16*)attn_smem;
  u16* Os = Qs + 64 * LD;
  u16* KV = Os + 64 * LD;
  const int bh = blockIdx.y, b1 = bh / b2n, b2 = bh % b2n, q0 = blockIdx.x * 64;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const u16* qb = (const u16*)q.p + b1 * q.sb1 + b2 * q.sb2;
  const u16* kb = (const u16*)k.p + b1 * k.sb1 + b2 * k.sb2;
  const u16* vb = (const u16*)v.p + b1 * v.sb1 + b2 * v.sb2;
  const u16* gob = (const u16*)go.p + b1 * go.sb1 + b2 * go.sb2;
  const int kend = causal ? min(nk, q0 + 64) : nk, tiles = (kend + 63) / 64;
  tile_async<D>(Qs, qb, q.sn, q0, nq);
  tile_async<D>(Os, gob, go.sn, q0, nq);
  tile_async<D>(KV, kb, k.sn, 0, nk);
  tile_async<D>(KV + 64 * LD, vb, v.sn, 0, nk);
  cp_commit();
  const int rowA = q0 + warp * 16 + g, rowB = rowA + 8;
  const float lA = rowA < nq ? lse[(i64)bh * nq + rowA] * ATTN_LOG2E : 0.f, lB = rowB < nq ? lse[(i64)bh * nq + rowB] * ATTN_LOG2E : 0.f;
  const float dA = rowA < nq ? dd[(i64)bh * nq + rowA] : 0.f, dB = rowB < nq ? dd[(i64)bh * nq + rowB] : 0.f;
  u32 qf[D / 16][4], of[D / 16][4];
  float acc[D / 8][4];
#pragma unroll
  for (int i = 0; i < D / 8; i++) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.f;
  for (int it = 0; it < tiles; it++) {
    const int k0 = it * 64;
    const u16* Ks = KV + (it & 1) * 2 * 64 * LD;
    const u16* Vs = Ks + 64 * LD;
    if (it + 1 < tiles) {
      u16* nx = KV + ((it + 1) & 1) * 2 * 64 * LD;
      tile_async<D>(nx, kb, k.sn, k0 + 64, nk);
      tile_async<D>(nx + 64 * LD, vb, v.sn, k0 + 64, nk);
      cp_commit();
      cp_wait<1>();
    } else {
      cp_wait<0>();
    }
    __syncthreads();
    if (it == 0)
#pragma unroll
      for (int kk = 0; kk < D / 16; kk++) {
        lda(qf[kk], Qs + warp * 16 * LD, LD, kk, g, t);
        lda(of[kk], Os + warp * 16 * LD, LD, kk, g, t);
      }
    float s[8][4], dp[8][4];
#pragma unroll
    for (int nt = 0; nt < 8; nt++)
#pragma unroll
      for (int e = 0; e < 4; e++) s[nt][e] = dp[nt][e] = 0.f;
    qkt<D, F16>(s, qf, Ks, g, t);
    qkt<D, F16>(dp, of, Vs, g, t);
    const bool edge = k0 + 64 > nk || (causal && k0 + 63 > q0 + warp * 16);
#pragma unroll
    for (int nt = 0; nt < 8; nt++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        float p = exp2f(s[nt][e] * sl2 - (e < 2 ? lA : lB));
        if (edge) {
          int key = k0 + nt * 8 + t * 2 + (e & 1), row = e < 2 ? rowA : rowB;
          if (key >= nk || (causal && key > row)) p = 0.f;
        }
        s[nt][e] = p * (dp[nt][e] - (e < 2 ? dA : dB));
      }
    pv<D, F16>(acc, s, Ks, lane);
    __syncthreads();
  }
  u16* gb = (u16*)gq.p + b1 * gq.sb1 + b2 * gq.sb2;
#pragma unroll
  for (int nt = 0; nt < D / 8; nt++) {
    int col = nt * 8 + t * 2;
    if (rowA < nq) *(u32*)(gb + (i64)rowA * gq.sn + col) = pack2<F16>(acc[nt][0] * scale, acc[nt][1] * scale);
    if (rowB < nq) *(u32*)(gb + (i64)rowB * gq.sn + col) = pack2<F16>(acc[nt][2] * scale, acc[nt][3] * scale);
  }
}

#define ATTN2_ENTRIES(D, NAME, F16)                                                                                        \
  extern "C" __global__ void __launch_bounds__(128) attn2_fwd_##NAME##_##D(ARef q, ARef k, ARef v, ARef o, float* lse,       \
                                                                             int b2n, int nq, int nk, int causal, float sl2) { \
    attn2_fwd_impl<D, F16>(q, k, v, o, lse, b2n, nq, nk, causal, sl2);                                                     \
  }                                                                                                                        \
  extern "C" __global__ void __launch_bounds__(128) attn2_bwd_kv_##NAME##_##D(ARef q, ARef k, ARef v, ARef go,               \
      const float* lse, const float* dd, ARef gk, ARef gv, int b2n, int nq, int nk, int causal, float sl2, float scale) {    \
    attn2_bwd_kv_impl<D, F16>(q, k, v, go, lse, dd, gk, gv, b2n, nq, nk, causal, sl2, scale);                              \
  }                                                                                                                        \
  extern "C" __global__ void __launch_bounds__(128) attn2_bwd_q_##NAME##_##D(ARef q, ARef k, ARef v, ARef go,                \
      const float* lse, const float* dd, ARef gq, int b2n, int nq, int nk, int causal, float sl2, float scale) {             \
    attn2_bwd_q_impl<D, F16>(q, k, v, go, lse, dd, gq, b2n, nq, nk, causal, sl2, scale);                                   \
  }

ATTN2_ENTRIES(32, bf16, false)
ATTN2_ENTRIES(64, bf16, false)
ATTN2_ENTRIES(80, bf16, false)
ATTN2_ENTRIES(96, bf16, false)
ATTN2_ENTRIES(128, bf16, false)
ATTN2_ENTRIES(32, f16, true)
ATTN2_ENTRIES(64, f16, true)
ATTN2_ENTRIES(80, f16, true)
ATTN2_ENTRIES(96, f16, true)
ATTN2_ENTRIES(128, f16, true)
