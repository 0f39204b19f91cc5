// Fused scaled-dot-product attention for bf16/f16 operands with f32 accumulation, in the manner of
// FlashAttention-2 (Dao, 2023): the logits never reach global memory. Forward: one block of 4 warps per 64
// query rows (16 per warp), looping over 64-key tiles with an online softmax; it writes the output and the
// row log-sum-exp. Backward: one block per 64-key tile (16 keys per warp) looping over the query tiles; P is
// recomputed from the saved log-sum-exp, dK and dV stay in registers, dQ is accumulated in f32 in global
// memory with atomics and converted at the end. Tensor cores through mma.sync.m16n8k16 (PTX ISA, "Warp-level
// matrix fragments for mma.m16n8k16"): A fragments hold rows g and g+8, columns 2t, 2t+1 (+8); B fragments
// columns g, rows 2t, 2t+1 (+8); C fragments rows g and g+8, columns 2t, 2t+1, where g = lane/4, t = lane%4.
// Shared tiles are [64][D+8] 16-bit elements: the 8-element pad puts the 8 rows a fragment load touches in
// different banks and keeps every row 16-byte aligned for ldmatrix.

typedef unsigned int u32;

// One operand: base pointer (element offset applied) and element strides of the outer batch, inner batch
// and row dims; the head dim has stride 1.
struct ARef {
  const void* p;
  i64 sb1, sb2, sn;
};

extern __shared__ __align__(16) unsigned char attn_smem[];

template <bool F16> __device__ __forceinline__ void mma16816(float* c, const u32* a, u32 b0, u32 b1) {
  if (F16)
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3]) : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  else
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3]) : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Two floats as a 16-bit pair, lo in the low half (cvt puts its first source in the high half).
template <bool F16> __device__ __forceinline__ u32 pack2(float lo, float hi) {
  u32 r;
  if (F16) asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
  else asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
}

template <bool F16> __device__ __forceinline__ float h2f(u16 h) { return F16 ? f16_to_f(h) : bf16_to_f(h); }

__device__ __forceinline__ u32 lds32(const u16* p) { return *(const u32*)p; }

__device__ __forceinline__ u32 smem_addr(const void* p) {
  u32 a;
  asm("{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }" : "=r"(a) : "l"(p));
  return a;
}

// Four 8x8 matrices, transposed: thread l gives the address of row l%8 of matrix l/8.
__device__ __forceinline__ void ldsm_x4_t(u32* r, const u16* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(smem_addr(p)));
}

// A fragment (16 rows from `base`, k columns kk*16 ..) of a row-major [m][k] tile.
__device__ __forceinline__ void lda(u32* a, const u16* base, int ld, int kk, int g, int t) {
  const u16* p = base + g * ld + kk * 16 + t * 2;
  a[0] = lds32(p);
  a[1] = lds32(p + 8 * ld);
  a[2] = lds32(p + 8);
  a[3] = lds32(p + 8 * ld + 8);
}

// B fragments of two n-tiles (n0, n0+8) for k-chunk k0 of a row-major [k][n] tile (ldmatrix, transposed).
__device__ __forceinline__ void ldb_kn(u32* r, const u16* s, int ld, int k0, int n0, int lane) {
  ldsm_x4_t(r, s + (k0 + ((lane >> 3) & 1) * 8 + (lane & 7)) * ld + n0 + (lane >> 4) * 8);
}

// rows r0 .. r0+63 of a [n][D] operand into a [64][D+8] tile; rows past n are zero (so 0·garbage cannot
// make a NaN). 16-byte loads: the host guarantees 8-element alignment of rows and base.
template <int D> __device__ __forceinline__ void load_tile(u16* s, const u16* base, i64 sn, int r0, int n) {
  const int C = D / 8;
  for (int i = threadIdx.x; i < 64 * C; i += blockDim.x) {
    int r = i / C, c = (i % C) * 8;
    uint4 v = make_uint4(0u, 0u, 0u, 0u);
    if (r0 + r < n) v = *(const uint4*)(base + (i64)(r0 + r) * sn + c);
    *(uint4*)(s + r * (D + 8) + c) = v;
  }
}

#define ATTN_NEG_INF __int_as_float(0xff800000)
#define ATTN_LN2 0.6931471805599453f
#define ATTN_LOG2E 1.4426950408889634f

// out = softmax(q kᵀ scale, causal) v; lse = the natural log-sum-exp of each row's scaled logits.
// sl2 = scale·log2(e): the softmax runs in base 2. Grid (ceil(nq/64), batch), block 128.
template <int D, bool F16> __device__ void attn_fwd_impl(ARef q, ARef k, ARef v, ARef o, float* lse, int b2n, int nq, int nk,
                                                         int causal, float sl2) {
  const int LD = D + 8;
  u16* Qs = (u16*)attn_smem;
  u16* Ks = Qs + 64 * LD;
  u16* Vs = Ks + 64 * LD;
  const int bh = blockIdx.y, b1 = bh / b2n, b2 = bh % b2n, q0 = blockIdx.x * 64;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const u16* qb = (const u16*)q.p + b1 * q.sb1 + b2 * q.sb2;
  const u16* kb = (const u16*)k.p + b1 * k.sb1 + b2 * k.sb2;
  const u16* vb = (const u16*)v.p + b1 * v.sb1 + b2 * v.sb2;
  load_tile<D>(Qs, qb, q.sn, q0, nq);
  __syncthreads();
  u32 qf[D / 16][4];
#pragma unroll
  for (int kk = 0; kk < D / 16; kk++) lda(qf[kk], Qs + warp * 16 * LD, LD, kk, g, t);
  float mrow[2] = {ATTN_NEG_INF, ATTN_NEG_INF}, lrow[2] = {0.f, 0.f};
  float acc[D / 8][4];
#pragma unroll
  for (int i = 0; i < D / 8; i++) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.f;
  const int rowA = q0 + warp * 16 + g, rowB = rowA + 8;
  const int kend = causal ? min(nk, q0 + 64) : nk;
  for (int k0 = 0; k0 < kend; k0 += 64) {
    __syncthreads();
    load_tile<D>(Ks, kb, k.sn, k0, nk);
    load_tile<D>(Vs, vb, v.sn, k0, nk);
    __syncthreads();
    float s[8][4];
#pragma unroll
    for (int nt = 0; nt < 8; nt++) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++)
#pragma unroll
      for (int nt = 0; nt < 8; nt++) {
        const u16* kp = Ks + (nt * 8 + g) * LD + kk * 16 + t * 2;
        mma16816<F16>(s[nt], qf[kk], lds32(kp), lds32(kp + 8));
      }
    float mx[2] = {ATTN_NEG_INF, ATTN_NEG_INF};
#pragma unroll
    for (int nt = 0; nt < 8; nt++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        int key = k0 + nt * 8 + t * 2 + (e & 1), row = e < 2 ? rowA : rowB;
        float x = s[nt][e] * sl2;
        if (key >= nk || (causal && key > row)) x = ATTN_NEG_INF;
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
#pragma unroll
    for (int kk = 0; kk < 4; kk++) {
      u32 a[4] = {pack2<F16>(s[2 * kk][0], s[2 * kk][1]), pack2<F16>(s[2 * kk][2], s[2 * kk][3]),
                  pack2<F16>(s[2 * kk + 1][0], s[2 * kk + 1][1]), pack2<F16>(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
      for (int np = 0; np < D / 16; np++) {
        u32 r[4];
        ldb_kn(r, Vs, LD, kk * 16, np * 16, lane);
        mma16816<F16>(acc[2 * np], a, r[0], r[1]);
        mma16816<F16>(acc[2 * np + 1], a, r[2], r[3]);
      }
    }
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

// dd[row] = sum_d dO·O (f32), one warp per row of the flattened [batch·nq] rows.
template <int D, bool F16> __device__ void attn_bwd_dot_impl(ARef o, ARef go, float* dd, int b2n, int nq, i64 rows) {
  i64 row = (i64)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  int lane = threadIdx.x & 31;
  if (row >= rows) return;
  i64 bh = row / nq;
  int i = (int)(row % nq), b1 = (int)(bh / b2n), b2 = (int)(bh % b2n);
  const u16* op = (const u16*)o.p + b1 * o.sb1 + b2 * o.sb2 + (i64)i * o.sn;
  const u16* gp = (const u16*)go.p + b1 * go.sb1 + b2 * go.sb2 + (i64)i * go.sn;
  float s = 0.f;
  for (int d = lane; d < D; d += 32) s += h2f<F16>(op[d]) * h2f<F16>(gp[d]);
  for (int m = 16; m > 0; m >>= 1) s += __shfl_xor_sync(0xffffffffu, s, m);
  if (lane == 0) dd[row] = s;
}

// Grid (ceil(nk/64), batch), block 128. Writes gk, gv; adds into dq (f32 [batch][nq][D], zeroed by the host).
template <int D, bool F16> __device__ void attn_bwd_impl(ARef q, ARef k, ARef v, ARef go, const float* lse, const float* dd, float* dq,
                                                         ARef gk, ARef gv, int b2n, int nq, int nk, int causal, float sl2, float scale) {
  const int LD = D + 8, LDS = 72;
  u16* Ks = (u16*)attn_smem;
  u16* Vs = Ks + 64 * LD;
  u16* Qs = Vs + 64 * LD;
  u16* Os = Qs + 64 * LD;  // dO
  u16* Ss = Os + 64 * LD;  // dSᵀ as [key][query]
  float* lse_s = (float*)(Ss + 64 * LDS);
  float* dd_s = lse_s + 64;
  const int bh = blockIdx.y, b1 = bh / b2n, b2 = bh % b2n, k0 = blockIdx.x * 64;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const u16* qb = (const u16*)q.p + b1 * q.sb1 + b2 * q.sb2;
  const u16* kb = (const u16*)k.p + b1 * k.sb1 + b2 * k.sb2;
  const u16* vb = (const u16*)v.p + b1 * v.sb1 + b2 * v.sb2;
  const u16* gob = (const u16*)go.p + b1 * go.sb1 + b2 * go.sb2;
  load_tile<D>(Ks, kb, k.sn, k0, nk);
  load_tile<D>(Vs, vb, v.sn, k0, nk);
  const int keyA = k0 + warp * 16 + g, keyB = keyA + 8;
  float dk[D / 8][4], dv[D / 8][4];
#pragma unroll
  for (int i = 0; i < D / 8; i++)
#pragma unroll
    for (int e = 0; e < 4; e++) dk[i][e] = dv[i][e] = 0.f;
  float* dqb = dq + (i64)bh * nq * D;
  for (int q0 = causal ? k0 : 0; q0 < nq; q0 += 64) {
    __syncthreads();
    load_tile<D>(Qs, qb, q.sn, q0, nq);
    load_tile<D>(Os, gob, go.sn, q0, nq);
    for (int i = threadIdx.x; i < 64; i += blockDim.x) {
      bool in = q0 + i < nq;
      lse_s[i] = in ? lse[(i64)bh * nq + q0 + i] * ATTN_LOG2E : 0.f;
      dd_s[i] = in ? dd[(i64)bh * nq + q0 + i] : 0.f;
    }
    __syncthreads();
    float st[8][4], dp[8][4];
#pragma unroll
    for (int nt = 0; nt < 8; nt++)
#pragma unroll
      for (int e = 0; e < 4; e++) st[nt][e] = dp[nt][e] = 0.f;
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++) {
      u32 ak[4], av[4];
      lda(ak, Ks + warp * 16 * LD, LD, kk, g, t);
      lda(av, Vs + warp * 16 * LD, LD, kk, g, t);
#pragma unroll
      for (int nt = 0; nt < 8; nt++) {
        const u16* qp = Qs + (nt * 8 + g) * LD + kk * 16 + t * 2;
        const u16* op = Os + (nt * 8 + g) * LD + kk * 16 + t * 2;
        mma16816<F16>(st[nt], ak, lds32(qp), lds32(qp + 8));
        mma16816<F16>(dp[nt], av, lds32(op), lds32(op + 8));
      }
    }
    // Pᵀ (keys x queries), then dSᵀ = Pᵀ ∘ (dPᵀ − dd)
#pragma unroll
    for (int nt = 0; nt < 8; nt++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        int qi = nt * 8 + t * 2 + (e & 1), key = e < 2 ? keyA : keyB, qrow = q0 + qi;
        float p = exp2f(st[nt][e] * sl2 - lse_s[qi]);
        if (key >= nk || qrow >= nq || (causal && key > qrow)) p = 0.f;
        st[nt][e] = p;
      }
#pragma unroll
    for (int kk = 0; kk < 4; kk++) {  // dV += Pᵀ dO
      u32 a[4] = {pack2<F16>(st[2 * kk][0], st[2 * kk][1]), pack2<F16>(st[2 * kk][2], st[2 * kk][3]),
                  pack2<F16>(st[2 * kk + 1][0], st[2 * kk + 1][1]), pack2<F16>(st[2 * kk + 1][2], st[2 * kk + 1][3])};
#pragma unroll
      for (int np = 0; np < D / 16; np++) {
        u32 r[4];
        ldb_kn(r, Os, LD, kk * 16, np * 16, lane);
        mma16816<F16>(dv[2 * np], a, r[0], r[1]);
        mma16816<F16>(dv[2 * np + 1], a, r[2], r[3]);
      }
    }
#pragma unroll
    for (int nt = 0; nt < 8; nt++)
#pragma unroll
      for (int e = 0; e < 4; e++) st[nt][e] *= dp[nt][e] - dd_s[nt * 8 + t * 2 + (e & 1)];
#pragma unroll
    for (int kk = 0; kk < 4; kk++) {  // dK += dSᵀ Q
      u32 a[4] = {pack2<F16>(st[2 * kk][0], st[2 * kk][1]), pack2<F16>(st[2 * kk][2], st[2 * kk][3]),
                  pack2<F16>(st[2 * kk + 1][0], st[2 * kk + 1][1]), pack2<F16>(st[2 * kk + 1][2], st[2 * kk + 1][3])};
#pragma unroll
      for (int np = 0; np < D / 16; np++) {
        u32 r[4];
        ldb_kn(r, Qs, LD, kk * 16, np * 16, lane);
        mma16816<F16>(dk[2 * np], a, r[0], r[1]);
        mma16816<F16>(dk[2 * np + 1], a, r[2], r[3]);
      }
      *(u32*)(Ss + (warp * 16 + g) * LDS + 2 * kk * 8 + t * 2) = a[0];
      *(u32*)(Ss + (warp * 16 + g + 8) * LDS + 2 * kk * 8 + t * 2) = a[1];
      *(u32*)(Ss + (warp * 16 + g) * LDS + (2 * kk + 1) * 8 + t * 2) = a[2];
      *(u32*)(Ss + (warp * 16 + g + 8) * LDS + (2 * kk + 1) * 8 + t * 2) = a[3];
    }
    __syncthreads();
    // dQ (this warp's 16 query rows) += dS K: A = dS [query][key] read transposed from Ss [key][query]
    const int qA = q0 + warp * 16 + g, qB = qA + 8;
#pragma unroll
    for (int np = 0; np < D / 16; np++) {
      float c0[4] = {0.f, 0.f, 0.f, 0.f}, c1[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
      for (int kk = 0; kk < 4; kk++) {
        u32 a[4], r[4];
        ldsm_x4_t(a, Ss + (kk * 16 + (lane >> 4) * 8 + (lane & 7)) * LDS + warp * 16 + ((lane >> 3) & 1) * 8);
        ldb_kn(r, Ks, LD, kk * 16, np * 16, lane);
        mma16816<F16>(c0, a, r[0], r[1]);
        mma16816<F16>(c1, a, r[2], r[3]);
      }
      int col = np * 16 + t * 2;
      if (qA < nq) {
        float* d0 = dqb + (i64)qA * D + col;
        atomicAdd(d0, c0[0] * scale); atomicAdd(d0 + 1, c0[1] * scale);
        atomicAdd(d0 + 8, c1[0] * scale); atomicAdd(d0 + 9, c1[1] * scale);
      }
      if (qB < nq) {
        float* d1 = dqb + (i64)qB * D + col;
        atomicAdd(d1, c0[2] * scale); atomicAdd(d1 + 1, c0[3] * scale);
        atomicAdd(d1 + 8, c1[2] * scale); atomicAdd(d1 + 9, c1[3] * scale);
      }
    }
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

// gq = dq (f32 [batch][nq][D]) in the operands' 16-bit type; one thread per element pair.
template <int D, bool F16> __device__ void attn_dq_impl(const float* dq, ARef gq, int b2n, int nq, i64 pairs) {
  GRID_LOOP(e, pairs) {
    i64 flat = e * 2, row = flat / D;
    int col = (int)(flat % D), i = (int)(row % nq);
    i64 bh = row / nq;
    int b1 = (int)(bh / b2n), b2 = (int)(bh % b2n);
    u16* p = (u16*)gq.p + b1 * gq.sb1 + b2 * gq.sb2 + (i64)i * gq.sn + col;
    *(u32*)p = pack2<F16>(dq[flat], dq[flat + 1]);
  }
}

#define ATTN_ENTRIES(D, NAME, F16)                                                                                        \
  extern "C" __global__ void __launch_bounds__(128) attn_fwd_##NAME##_##D(ARef q, ARef k, ARef v, ARef o, float* lse, int b2n, \
                                                                            int nq, int nk, int causal, float sl2) {      \
    attn_fwd_impl<D, F16>(q, k, v, o, lse, b2n, nq, nk, causal, sl2);                                                     \
  }                                                                                                                       \
  extern "C" __global__ void attn_bwd_dot_##NAME##_##D(ARef o, ARef go, float* dd, int b2n, int nq, i64 rows) {           \
    attn_bwd_dot_impl<D, F16>(o, go, dd, b2n, nq, rows);                                                                  \
  }                                                                                                                       \
  extern "C" __global__ void __launch_bounds__(128) attn_bwd_##NAME##_##D(ARef q, ARef k, ARef v, ARef go, const float* lse, \
      const float* dd, float* dq, ARef gk, ARef gv, int b2n, int nq, int nk, int causal, float sl2, float scale) {          \
    attn_bwd_impl<D, F16>(q, k, v, go, lse, dd, dq, gk, gv, b2n, nq, nk, causal, sl2, scale);                             \
  }                                                                                                                       \
  extern "C" __global__ void attn_dq_##NAME##_##D(const float* dq, ARef gq, int b2n, int nq, i64 pairs) {                 \
    attn_dq_impl<D, F16>(dq, gq, b2n, nq, pairs);                                                                         \
  }

ATTN_ENTRIES(32, bf16, false)
ATTN_ENTRIES(64, bf16, false)
ATTN_ENTRIES(80, bf16, false)
ATTN_ENTRIES(96, bf16, false)
ATTN_ENTRIES(128, bf16, false)
ATTN_ENTRIES(32, f16, true)
ATTN_ENTRIES(64, f16, true)
ATTN_ENTRIES(80, f16, true)
ATTN_ENTRIES(96, f16, true)
ATTN_ENTRIES(128, f16, true)
