// Layer norm forward and input gradient for contiguous bf16 or f32 rows, one warp per row, the row held in
// registers and moved with 16-byte loads and stores (8 bf16 or 4 f32 per vector, VPT vectors per lane).
// The generic kernels in norm.cu handle every other case. Statistics accumulate in f32.

template <bool BF> struct Vec;
template <> struct Vec<true> {
  static const int E = 8;
  static __device__ __forceinline__ void unpack(uint4 r, float* f) {
    unsigned w[4] = {r.x, r.y, r.z, r.w};
#pragma unroll
    for (int i = 0; i < 4; i++) { f[2 * i] = bf16_to_f((u16)(w[i] & 0xffffu)); f[2 * i + 1] = bf16_to_f((u16)(w[i] >> 16)); }
  }
  static __device__ __forceinline__ uint4 pack(const float* f) {
    unsigned w[4];
#pragma unroll
    for (int i = 0; i < 4; i++) w[i] = f2_to_bf16x2(f[2 * i], f[2 * i + 1]);
    return make_uint4(w[0], w[1], w[2], w[3]);
  }
};
template <> struct Vec<false> {
  static const int E = 4;
  static __device__ __forceinline__ void unpack(uint4 r, float* f) {
    f[0] = __uint_as_float(r.x); f[1] = __uint_as_float(r.y); f[2] = __uint_as_float(r.z); f[3] = __uint_as_float(r.w);
  }
  static __device__ __forceinline__ uint4 pack(const float* f) {
    return make_uint4(__float_as_uint(f[0]), __float_as_uint(f[1]), __float_as_uint(f[2]), __float_as_uint(f[3]));
  }
};

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int m = 16; m > 0; m >>= 1) v += __shfl_xor_sync(0xffffffffu, v, m);
  return v;
}

// x, y: [rows, n] contiguous and 16-byte aligned; w, b: [n] or null; mean, rstd: f32 [rows]. Block of 4 warps.
// Every load of the row is issued first and kept as raw vectors (a bf16 vector is 4 registers, its floats 8, so the
// row is unpacked again for each pass instead of held as floats): the row, the weight and the bias are in flight
// together, and no weight load waits behind an output store it might alias.
template <bool BF, int VPT> __device__ void ln_vec_impl(i64 rows, int n, float eps, const uint4* x, const uint4* w, const uint4* b,
                                                        uint4* y, float* mean, float* rstd) {
  const int E = Vec<BF>::E;
  i64 row = (i64)blockIdx.x * 4 + (threadIdx.x >> 5);
  int lane = threadIdx.x & 31, nvec = n / E;
  if (row >= rows) return;
  const uint4* xr = x + row * nvec;
  uint4 xv[VPT], wv[VPT], bv[VPT];
#pragma unroll
  for (int i = 0; i < VPT; i++) {
    int c = lane + i * 32;
    if (c < nvec) {
      xv[i] = xr[c];
      if (w) wv[i] = w[c];
      if (b) bv[i] = b[c];
    }
  }
  float sum = 0.f;
#pragma unroll
  for (int i = 0; i < VPT; i++)
    if (lane + i * 32 < nvec) {
      float f[E];
      Vec<BF>::unpack(xv[i], f);
#pragma unroll
      for (int e = 0; e < E; e++) sum += f[e];
    }
  float mu = warp_sum(sum) / (float)n, sq = 0.f;
#pragma unroll
  for (int i = 0; i < VPT; i++)
    if (lane + i * 32 < nvec) {
      float f[E];
      Vec<BF>::unpack(xv[i], f);
#pragma unroll
      for (int e = 0; e < E; e++) { float d = f[e] - mu; sq += d * d; }
    }
  float rs = 1.f / sqrtf(warp_sum(sq) / (float)n + eps);
  uint4* yr = y + row * nvec;
#pragma unroll
  for (int i = 0; i < VPT; i++) {
    int c = lane + i * 32;
    if (c >= nvec) continue;
    float f[E], wf[E], bf[E], o[E];
    Vec<BF>::unpack(xv[i], f);
    if (w) Vec<BF>::unpack(wv[i], wf);
    if (b) Vec<BF>::unpack(bv[i], bf);
#pragma unroll
    for (int e = 0; e < E; e++) {
      float t = (f[e] - mu) * rs;
      if (w) t *= wf[e];
      if (b) t += bf[e];
      o[e] = t;
    }
    yr[c] = Vec<BF>::pack(o);
  }
  if (lane == 0) { mean[row] = mu; rstd[row] = rs; }
}

// One row of the layer-norm input gradient, by one warp: gx = rs·(g·w − mean(g·w) − xhat·mean(g·w·xhat)); gy, x, gx
// contiguous and aligned like x above, w may be null. With SUMS, also adds gy·xhat and gy into the warp's shared-memory
// column sums sw, sb (slot (i·E + e)·32 + lane, see ln_vec_bwd_wb_impl). acc (gx's layout, or null): a gradient already
// pending for x, stored as acc + gx with gx first rounded to the dtype and the add uncontracted (__fadd_rn), so the
// result is bit for bit the separate elementwise add of acc and the unaccumulated gx.
// As in the forward, the row's loads (x, gy, w and, for bf16, the pending gradient) go out first and stay raw, and each
// pass unpacks them again: the whole row is in flight at once, with no load ordered behind a shared-memory or output
// store. (f32 rows hold their floats either way, so they load the pending gradient at the end, as before: holding it
// too would cost VPT·4 more registers a thread.)
template <bool BF, int VPT, bool SUMS> __device__ __forceinline__ void ln_vec_bwd_row(i64 row, int lane, int n, const uint4* gy, const uint4* x,
    const uint4* w, const float* mean, const float* rstd, const uint4* acc, uint4* gx, float* sw, float* sb) {
  const int E = Vec<BF>::E;
  int nvec = n / E;
  const bool holdW = !SUMS;   // with SUMS, w is the block's copy in shared memory, read where it is used
  uint4 xv[VPT], gv[VPT], wv[VPT], av[VPT];
#pragma unroll
  for (int i = 0; i < VPT; i++) {
    int c = lane + i * 32;
    if (c < nvec) {
      xv[i] = x[row * nvec + c];
      gv[i] = gy[row * nvec + c];
      if (w && holdW) wv[i] = w[c];
      if (BF && acc) av[i] = acc[row * nvec + c];
    }
  }
  float mu = mean[row], rs = rstd[row];
  float sg = 0.f, sgx = 0.f;
#pragma unroll
  for (int i = 0; i < VPT; i++) {
    int c = lane + i * 32;
    if (c < nvec) {
      float xh[E], g[E], wf[E];
      Vec<BF>::unpack(xv[i], xh);
      Vec<BF>::unpack(gv[i], g);
      if (w) Vec<BF>::unpack(holdW ? wv[i] : w[c], wf);
#pragma unroll
      for (int e = 0; e < E; e++) xh[e] = (xh[e] - mu) * rs;
      if (SUMS) {   // gy and gy·xhat (before the weight) into this lane's quads of the warp's sums: 16-byte accesses
#pragma unroll
        for (int h = 0; h < E / 4; h++) {
          float4* qb = (float4*)sb + (i * (E / 4) + h) * 32 + lane;
          float4* qw = (float4*)sw + (i * (E / 4) + h) * 32 + lane;
          float4 b4 = *qb, w4 = *qw;
          b4.x += g[4 * h]; b4.y += g[4 * h + 1]; b4.z += g[4 * h + 2]; b4.w += g[4 * h + 3];
          w4.x += g[4 * h] * xh[4 * h]; w4.y += g[4 * h + 1] * xh[4 * h + 1];
          w4.z += g[4 * h + 2] * xh[4 * h + 2]; w4.w += g[4 * h + 3] * xh[4 * h + 3];
          *qb = b4;
          *qw = w4;
        }
      }
#pragma unroll
      for (int e = 0; e < E; e++) {
        if (w) g[e] = __fmul_rn(g[e], wf[e]);   // rounded, never contracted: the second pass recomputes the same value
        sg += g[e];
        sgx += g[e] * xh[e];
      }
    }
  }
  sg = warp_sum(sg) / (float)n;
  sgx = warp_sum(sgx) / (float)n;
#pragma unroll
  for (int i = 0; i < VPT; i++) {
    int c = lane + i * 32;
    if (c >= nvec) continue;
    float xh[E], g[E], wf[E], o[E];
    Vec<BF>::unpack(xv[i], xh);
    Vec<BF>::unpack(gv[i], g);
    if (w) Vec<BF>::unpack(holdW ? wv[i] : w[c], wf);
#pragma unroll
    for (int e = 0; e < E; e++) {
      float xn = (xh[e] - mu) * rs;
      float gw = w ? __fmul_rn(g[e], wf[e]) : g[e];
      o[e] = rs * (gw - sg - xn * sgx);
    }
    if (acc) {
      float a[E];
      Vec<BF>::unpack(BF ? av[i] : acc[row * nvec + c], a);
#pragma unroll
      for (int e = 0; e < E; e++) o[e] = __fadd_rn(a[e], BF ? bf16_to_f(f_to_bf16(o[e])) : o[e]);
    }
    gx[row * nvec + c] = Vec<BF>::pack(o);
  }
}

// The input gradient alone, one warp per row (block of 4 warps).
template <bool BF, int VPT> __device__ void ln_vec_bwd_impl(i64 rows, int n, const uint4* gy, const uint4* x, const uint4* w,
                                                            const float* mean, const float* rstd, const uint4* acc, uint4* gx) {
  i64 row = (i64)blockIdx.x * 4 + (threadIdx.x >> 5);
  if (row >= rows) return;
  ln_vec_bwd_row<BF, VPT, false>(row, threadIdx.x & 31, n, gy, x, w, mean, rstd, acc, gx, nullptr, nullptr);
}

#define LN_VEC(NAME, BF, VPT)                                                                                                 \
  extern "C" __global__ void __launch_bounds__(128) ln_vec_##NAME##_##VPT(i64 rows, int n, float eps, const uint4* x,       \
      const uint4* w, const uint4* b, uint4* y, float* mean, float* rstd) {                                                  \
    ln_vec_impl<BF, VPT>(rows, n, eps, x, w, b, y, mean, rstd);                                                              \
  }                                                                                                                           \
  extern "C" __global__ void __launch_bounds__(128) ln_vec_bwd_##NAME##_##VPT(i64 rows, int n, const uint4* gy, const uint4* x, \
      const uint4* w, const float* mean, const float* rstd, const uint4* acc, uint4* gx) {                                   \
    ln_vec_bwd_impl<BF, VPT>(rows, n, gy, x, w, mean, rstd, acc, gx);                                                        \
  }

LN_VEC(bf16, true, 1) LN_VEC(bf16, true, 2) LN_VEC(bf16, true, 3) LN_VEC(bf16, true, 4)
LN_VEC(bf16, true, 5) LN_VEC(bf16, true, 6) LN_VEC(bf16, true, 7) LN_VEC(bf16, true, 8)
LN_VEC(f32, false, 1) LN_VEC(f32, false, 2) LN_VEC(f32, false, 3) LN_VEC(f32, false, 4)
LN_VEC(f32, false, 5) LN_VEC(f32, false, 6) LN_VEC(f32, false, 7) LN_VEC(f32, false, 8)

// The layer-norm backward in one pass over gy and x: gx as ln_vec_bwd above (acc added when non-null), and the weight gradients' partial
// column sums over the block's rows, pw[block, c] = sum gy·xhat and pb[block, c] = sum gy (f32 [gridDim.x, n]), which
// layernorm_wb_final then adds up in block order (deterministic). Each warp takes rows blockIdx.x·4 + warp, stepping
// by gridDim.x·4, and adds its lanes' columns into its own slice of shared memory (S = VPT·E·32 floats per warp and
// sum; column (lane + 32·i)·E + 4·h + k, h < E/4, sits in quad (i·E/4 + h)·32 + lane, element k, so a lane adds four
// columns with one 16-byte load and store and a warp's quads are 512 contiguous bytes, free of bank conflicts; no two
// lanes share a column, so no atomics); keeping those sums in registers instead doubled the registers per thread and
// halved the warps per SM. The 4 warps' slices are combined at the end. Saves ln_wb_vec's second read of gy and x.
template <bool BF, int VPT> __device__ void ln_vec_bwd_wb_impl(i64 rows, int n, const uint4* gy, const uint4* x, const uint4* w,
                                                               const float* mean, const float* rstd, const uint4* acc, uint4* gx,
                                                               float* pw, float* pb) {
  extern __shared__ float4 red4[];   // [2][4][S] floats: gw sums of the 4 warps, then gb sums; then w's n/E vectors
  float* red = (float*)red4;
  const int E = Vec<BF>::E, S = VPT * E * 32;
  int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  float* sw = red + warp * S;
  float* sb = red + (4 + warp) * S;
  for (int j = lane; j < S; j += 32) { sw[j] = 0.f; sb[j] = 0.f; }
  uint4* wsh = (uint4*)(red + 8 * S);   // the weight, shared by every row: VPT·4 registers a thread fewer
  if (w)
    for (int j = threadIdx.x; j < n / E; j += blockDim.x) wsh[j] = w[j];
  __syncthreads();
  for (i64 row = (i64)blockIdx.x * 4 + warp; row < rows; row += (i64)gridDim.x * 4)
    ln_vec_bwd_row<BF, VPT, true>(row, lane, n, gy, x, w ? wsh : nullptr, mean, rstd, acc, gx, sw, sb);
  __syncthreads();
  for (int col = threadIdx.x; col < n; col += blockDim.x) {
    int c = col / E, e = col - c * E, j = (((c >> 5) * (E / 4) + (e >> 2)) * 32 + (c & 31)) * 4 + (e & 3);
    pw[(i64)blockIdx.x * n + col] = (red[j] + red[S + j]) + (red[2 * S + j] + red[3 * S + j]);
    pb[(i64)blockIdx.x * n + col] = (red[4 * S + j] + red[5 * S + j]) + (red[6 * S + j] + red[7 * S + j]);
  }
}

#define LN_VEC_BWD_WB(NAME, BF, VPT)                                                                                            \
  extern "C" __global__ void __launch_bounds__(128) ln_vec_bwd_wb_##NAME##_##VPT(i64 rows, int n, const uint4* gy, const uint4* x, \
      const uint4* w, const float* mean, const float* rstd, const uint4* acc, uint4* gx, float* pw, float* pb) {               \
    ln_vec_bwd_wb_impl<BF, VPT>(rows, n, gy, x, w, mean, rstd, acc, gx, pw, pb);                                                \
  }
LN_VEC_BWD_WB(bf16, true, 1) LN_VEC_BWD_WB(bf16, true, 2) LN_VEC_BWD_WB(bf16, true, 3) LN_VEC_BWD_WB(bf16, true, 4)
LN_VEC_BWD_WB(bf16, true, 5) LN_VEC_BWD_WB(f32, false, 1) LN_VEC_BWD_WB(f32, false, 2) LN_VEC_BWD_WB(f32, false, 3)
LN_VEC_BWD_WB(f32, false, 4) LN_VEC_BWD_WB(f32, false, 5) LN_VEC_BWD_WB(f32, false, 6) LN_VEC_BWD_WB(f32, false, 7)
LN_VEC_BWD_WB(f32, false, 8)

// Partial column sums for the layer-norm weight gradients (as layernorm_wb_partial in norm.cu), for
// contiguous bf16/f32 rows: two columns per thread through one 4- or 8-byte load, rows unrolled so several
// loads are in flight. Grid (ceil(n/512), chunks), block 256; n even. pw, pb: f32 [chunks, n].
template <bool BF> __device__ void ln_wb_vec_impl(i64 rows, int n, i64 rowsPerChunk, const void* gy, const void* x, const float* mean,
                                                  const float* rstd, float* pw, float* pb) {
  int c = 2 * (blockIdx.x * blockDim.x + threadIdx.x);
  if (c >= n) return;
  i64 r0 = (i64)blockIdx.y * rowsPerChunk, r1 = r0 + rowsPerChunk < rows ? r0 + rowsPerChunk : rows;
  float aw0 = 0.f, aw1 = 0.f, ab0 = 0.f, ab1 = 0.f;
#pragma unroll 4
  for (i64 r = r0; r < r1; r++) {
    float g0, g1, x0, x1;
    if (BF) {
      unsigned gv = *(const unsigned*)((const u16*)gy + r * n + c), xv = *(const unsigned*)((const u16*)x + r * n + c);
      g0 = bf16_to_f((u16)(gv & 0xffffu)); g1 = bf16_to_f((u16)(gv >> 16));
      x0 = bf16_to_f((u16)(xv & 0xffffu)); x1 = bf16_to_f((u16)(xv >> 16));
    } else {
      float2 gv = *(const float2*)((const float*)gy + r * n + c), xv = *(const float2*)((const float*)x + r * n + c);
      g0 = gv.x; g1 = gv.y; x0 = xv.x; x1 = xv.y;
    }
    float mu = mean[r], rs = rstd[r];
    aw0 += g0 * (x0 - mu) * rs; aw1 += g1 * (x1 - mu) * rs;
    ab0 += g0; ab1 += g1;
  }
  pw[(i64)blockIdx.y * n + c] = aw0; pw[(i64)blockIdx.y * n + c + 1] = aw1;
  pb[(i64)blockIdx.y * n + c] = ab0; pb[(i64)blockIdx.y * n + c + 1] = ab1;
}

extern "C" __global__ void ln_wb_vec_bf16(i64 rows, int n, i64 rpc, const void* gy, const void* x, const float* mean, const float* rstd,
                                          float* pw, float* pb) {
  ln_wb_vec_impl<true>(rows, n, rpc, gy, x, mean, rstd, pw, pb);
}
extern "C" __global__ void ln_wb_vec_f32(i64 rows, int n, i64 rpc, const void* gy, const void* x, const float* mean, const float* rstd,
                                         float* pw, float* pb) {
  ln_wb_vec_impl<false>(rows, n, rpc, gy, x, mean, rstd, pw, pb);
}

// Softmax / log-softmax over contiguous rows of n (a multiple of 8) bf16 or f32 values, one block per row,
// 8 values per thread step through 16-byte loads (ld8/st8 of elementwise_vec.cu). Pass 1 keeps a running
// (max, sum of exp) per thread, one exp per value; pass 2 writes. A NaN anywhere makes the row NaN and a row
// of -inf gives NaN, as the generic kernel (norm.cu) and the reference do.
// Pass 1 over one row of nv 8-value vectors: the block's (max, sum of exp) in every thread; returns whether the row
// has a NaN. Uses sm/ss (32 floats each) as the block reduction's scratch.
template <typename TX> __device__ __forceinline__ bool row_max_sum(const TX* xr, int nv, float& m, float& s, float* sm, float* ss) {
  m = -m_inf<float>();
  s = 0.f;
  bool nan = false;
  for (int v = threadIdx.x; v < nv; v += blockDim.x) {
    float f[8];
    ld8(xr + v * 8, f);
    float vm = -m_inf<float>();
#pragma unroll
    for (int j = 0; j < 8; j++) { nan |= m_isnan(f[j]); vm = fmaxf(vm, f[j]); }
    if (vm == -m_inf<float>()) continue;
    float t = 0.f;
#pragma unroll
    for (int j = 0; j < 8; j++) t += m_exp(f[j] - vm);
    ms_merge(m, s, vm, t);
  }
  nan = __syncthreads_or(nan);
  block_max_sum(m, s, sm, ss);
  return nan;
}

template <typename TX, typename TO> __device__ void softmax_dense_impl(i64 rows, int n, int logMode, const TX* x, TO* out) {
  __shared__ float sm[32], ss[32];
  int nv = n / 8;
  for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
    const TX* xr = x + r * n;
    float m, s;
    bool nan = row_max_sum(xr, nv, m, s, sm, ss);
    float logSum = m_log(s);
    TO* orow = out + r * n;
    for (int v = threadIdx.x; v < nv; v += blockDim.x) {
      float f[8];
      ld8(xr + v * 8, f);
#pragma unroll
      for (int j = 0; j < 8; j++) {
        float z = f[j] - m;
        f[j] = nan ? m_nan<float>() : (logMode ? z - logSum : m_exp(z) / s);
      }
      st8(orow + v * 8, f);
    }
  }
}

// Its backward: gx = y (gy - sum(gy y)) for softmax, gy - exp(y) sum(gy) for log-softmax; y, gy, gx contiguous rows.
template <typename TY, typename TG, typename TO> __device__ void softmax_bwd_dense_impl(i64 rows, int n, int logMode, const TY* y, const TG* gy, TO* gx) {
  __shared__ float sh[32];
  int nv = n / 8;
  for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
    const TY* yr = y + r * n;
    const TG* gr = gy + r * n;
    float dot = 0.f;
    for (int v = threadIdx.x; v < nv; v += blockDim.x) {
      float g[8], yy[8];
      ld8(gr + v * 8, g);
      if (!logMode) ld8(yr + v * 8, yy);
#pragma unroll
      for (int j = 0; j < 8; j++) dot += logMode ? g[j] : g[j] * yy[j];
    }
    dot = block_sum(dot, sh);
    TO* orow = gx + r * n;
    for (int v = threadIdx.x; v < nv; v += blockDim.x) {
      float g[8], yy[8];
      ld8(gr + v * 8, g);
      ld8(yr + v * 8, yy);
#pragma unroll
      for (int j = 0; j < 8; j++) g[j] = logMode ? g[j] - m_exp(yy[j]) * dot : yy[j] * (g[j] - dot);
      st8(orow + v * 8, g);
    }
  }
}

#define SOFTMAX_DENSE(NAME, TX, TO)                                                                       \
  extern "C" __global__ void softmax_dense_##NAME(i64 rows, int n, int logMode, const void* x, void* out) { \
    softmax_dense_impl<TX, TO>(rows, n, logMode, (const TX*)x, (TO*)out);                                \
  }
SOFTMAX_DENSE(bb, u16, u16) SOFTMAX_DENSE(bf, u16, float) SOFTMAX_DENSE(fb, float, u16) SOFTMAX_DENSE(ff, float, float)

#define SOFTMAX_BWD_DENSE(NAME, TY, TG, TO)                                                                                     \
  extern "C" __global__ void softmax_bwd_dense_##NAME(i64 rows, int n, int logMode, const void* y, const void* gy, void* gx) {  \
    softmax_bwd_dense_impl<TY, TG, TO>(rows, n, logMode, (const TY*)y, (const TG*)gy, (TO*)gx);                               \
  }
SOFTMAX_BWD_DENSE(bbb, u16, u16, u16) SOFTMAX_BWD_DENSE(fff, float, float, float) SOFTMAX_BWD_DENSE(bff, u16, float, float)
SOFTMAX_BWD_DENSE(fbf, float, u16, float) SOFTMAX_BWD_DENSE(ffb, float, float, u16) SOFTMAX_BWD_DENSE(bbf, u16, u16, float)
SOFTMAX_BWD_DENSE(bfb, u16, float, u16) SOFTMAX_BWD_DENSE(fbb, float, u16, u16)

// Cross entropy over contiguous rows of n (a multiple of 8) bf16 or f32 logits with i64 targets in [0, n), one
// block per row. Forward: lse[r] = log sum_c exp(x[r, c]) in f32 (the softmax kernel's pass 1) and
// nll[r] = lse[r] - x[r, t_r], rounded once to the logits' type. Backward, in one pass over the logits:
// gx[r, c] = (exp(x[r, c] - lse[r]) - [c == t_r]) * w[r]. A NaN in a row makes its lse, loss and gradient NaN.
template <typename TX> __device__ void ce_fwd_impl(i64 rows, int n, const TX* x, const i64* t, TX* nll, float* lse) {
  __shared__ float sm[32], ss[32];
  int nv = n / 8;
  for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
    const TX* xr = x + r * n;
    float m, s;
    bool nan = row_max_sum(xr, nv, m, s, sm, ss);
    if (threadIdx.x == 0) {
      float l = nan ? m_nan<float>() : m + m_log(s);
      lse[r] = l;
      st1(nll + r, l - ld1(xr + t[r]));
    }
  }
}

template <typename TX> __device__ void ce_bwd_impl(i64 rows, int n, const TX* x, const i64* t, const float* lse, const TX* w, TX* gx) {
  int nv = n / 8;
  for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
    const TX* xr = x + r * n;
    TX* gr = gx + r * n;
    float l = lse[r], wr = ld1(w + r);
    i64 tr = t[r];
    for (int v = threadIdx.x; v < nv; v += blockDim.x) {
      float f[8];
      ld8(xr + v * 8, f);
#pragma unroll
      for (int j = 0; j < 8; j++) f[j] = (m_exp(f[j] - l) - ((i64)v * 8 + j == tr ? 1.f : 0.f)) * wr;
      st8(gr + v * 8, f);
    }
  }
}

extern "C" __global__ void ce_fwd_b(i64 rows, int n, const void* x, const i64* t, void* nll, float* lse) {
  ce_fwd_impl<u16>(rows, n, (const u16*)x, t, (u16*)nll, lse);
}
extern "C" __global__ void ce_fwd_f(i64 rows, int n, const void* x, const i64* t, void* nll, float* lse) {
  ce_fwd_impl<float>(rows, n, (const float*)x, t, (float*)nll, lse);
}
extern "C" __global__ void ce_bwd_b(i64 rows, int n, const void* x, const i64* t, const float* lse, const void* w, void* gx) {
  ce_bwd_impl<u16>(rows, n, (const u16*)x, t, lse, (const u16*)w, (u16*)gx);
}
extern "C" __global__ void ce_bwd_f(i64 rows, int n, const void* x, const i64* t, const float* lse, const void* w, void* gx) {
  ce_bwd_impl<float>(rows, n, (const float*)x, t, lse, (const float*)w, (float*)gx);
}

// The sum of all n elements of a contiguous bf16 or f32 tensor, first stage: each block adds a grid-stride share
// into one partial (float, or double for an f64 result); the host then reduces the partials with reduce_rows.
// A full reduction in one block (what reduce_rows does with one output) leaves all but one SM idle.
template <typename T, typename A> __device__ void sum_partial_impl(i64 n, const T* x, A* part) {
  __shared__ A sh[32];
  A acc = (A)0;
  for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)blockDim.x * gridDim.x) acc += (A)ld1(x + i);
  acc = block_sum(acc, sh);
  if (threadIdx.x == 0) part[blockIdx.x] = acc;
}

extern "C" __global__ void sum_partial_bf(i64 n, const void* x, float* part) { sum_partial_impl<u16, float>(n, (const u16*)x, part); }
extern "C" __global__ void sum_partial_bd(i64 n, const void* x, double* part) { sum_partial_impl<u16, double>(n, (const u16*)x, part); }
extern "C" __global__ void sum_partial_ff(i64 n, const void* x, float* part) { sum_partial_impl<float, float>(n, (const float*)x, part); }
extern "C" __global__ void sum_partial_fd(i64 n, const void* x, double* part) { sum_partial_impl<float, double>(n, (const float*)x, part); }
