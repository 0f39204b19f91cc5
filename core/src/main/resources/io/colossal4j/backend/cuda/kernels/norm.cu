// Softmax (and log-softmax) along one dim, its backward, and layer norm over the last dim with its backward.
// One block per line or row; blockDim.x is a multiple of 32, at most 1024; accumulation in float (double for
// f64 tensors, the _d entry points).

// Sum over the block; every thread gets the result. Uses 32 slots of shared memory.
template <typename A> __device__ __forceinline__ A block_sum(A v, A* shared) {
  for (int d = 16; d > 0; d >>= 1) v += __shfl_down_sync(0xffffffffu, v, d);
  int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nw = blockDim.x >> 5;
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  A t = lane < nw ? shared[lane] : (A)0;
  for (int d = 16; d > 0; d >>= 1) t += __shfl_down_sync(0xffffffffu, t, d);
  return __shfl_sync(0xffffffffu, t, 0);
}

// Online (max, sum of exp) pair, merged so that a -inf max never produces exp(-inf - -inf).
template <typename A> __device__ __forceinline__ void ms_merge(A& m, A& s, A m2, A s2) {
  if (m2 == -m_inf<A>()) return;
  if (m == -m_inf<A>()) { m = m2; s = s2; return; }
  if (m2 > m) { s = s * m_exp(m - m2) + s2; m = m2; }
  else s = s + s2 * m_exp(m2 - m);
}

template <typename A> __device__ __forceinline__ void block_max_sum(A& m, A& s, A* sm, A* ss) {
  for (int d = 16; d > 0; d >>= 1) {
    A m2 = __shfl_down_sync(0xffffffffu, m, d), s2 = __shfl_down_sync(0xffffffffu, s, d);
    ms_merge(m, s, m2, s2);
  }
  int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nw = blockDim.x >> 5;
  __syncthreads();
  if (lane == 0) { sm[warp] = m; ss[warp] = s; }
  __syncthreads();
  A mm = lane < nw ? sm[lane] : -m_inf<A>(), s1 = lane < nw ? ss[lane] : (A)0;
  for (int d = 16; d > 0; d >>= 1) {
    A m2 = __shfl_down_sync(0xffffffffu, mm, d), s2 = __shfl_down_sync(0xffffffffu, s1, d);
    ms_merge(mm, s1, m2, s2);
  }
  m = __shfl_sync(0xffffffffu, mm, 0);
  s = __shfl_sync(0xffffffffu, s1, 0);
}

// Lines: g (operands 0 = x, 1 = out) walks every line start; sx/so are the strides along the softmax dim.
// A NaN anywhere in a line makes the line NaN, as in the reference.
template <typename A> __device__ void softmax_impl(Geom g, int n, i64 sx, i64 so, int logMode, const void* x, int xdt, void* out, int odt) {
  __shared__ A sm[32], ss[32];
  for (i64 line = blockIdx.x; line < g.numel; line += gridDim.x) {
    i64 off[2];
    offsets_of(g, line, 2, off);
    A m = -m_inf<A>(), s = (A)0;
    bool nan = false;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
      A v = load<A>(x, xdt, off[0] + i * sx);
      if (m_isnan(v)) nan = true; else ms_merge(m, s, v, (A)1);
    }
    nan = __syncthreads_or(nan);
    block_max_sum(m, s, sm, ss);
    A logSum = m_log(s);
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
      A z = load<A>(x, xdt, off[0] + i * sx) - m;
      A r = logMode ? z - logSum : m_exp(z) / s;
      store<A>(out, odt, off[1] + i * so, nan ? m_nan<A>() : r);
    }
  }
}

extern "C" __global__ void softmax_f(Geom g, int n, i64 sx, i64 so, int logMode, const void* x, int xdt, void* out, int odt) {
  softmax_impl<float>(g, n, sx, so, logMode, x, xdt, out, odt);
}
extern "C" __global__ void softmax_d(Geom g, int n, i64 sx, i64 so, int logMode, const void* x, int xdt, void* out, int odt) {
  softmax_impl<double>(g, n, sx, so, logMode, x, xdt, out, odt);
}

// Operands 0 = y, 1 = gy, 2 = gx; strides along the dim sy, sg, sgx.
template <typename A> __device__ void softmax_bwd_impl(Geom g, int n, i64 sy, i64 sg, i64 sgx, int logMode,
                                                      const void* y, int ydt, const void* gy, int gdt, void* gx, int xdt) {
  __shared__ A sh[32];
  for (i64 line = blockIdx.x; line < g.numel; line += gridDim.x) {
    i64 off[3];
    offsets_of(g, line, 3, off);
    A dot = (A)0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
      A gv = load<A>(gy, gdt, off[1] + i * sg);
      dot += logMode ? gv : gv * load<A>(y, ydt, off[0] + i * sy);
    }
    dot = block_sum(dot, sh);
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
      A yv = load<A>(y, ydt, off[0] + i * sy), gv = load<A>(gy, gdt, off[1] + i * sg);
      store<A>(gx, xdt, off[2] + i * sgx, logMode ? gv - m_exp(yv) * dot : yv * (gv - dot));
    }
  }
}

extern "C" __global__ void softmax_bwd_f(Geom g, int n, i64 sy, i64 sg, i64 sgx, int logMode, const void* y, int ydt, const void* gy, int gdt, void* gx, int xdt) {
  softmax_bwd_impl<float>(g, n, sy, sg, sgx, logMode, y, ydt, gy, gdt, gx, xdt);
}
extern "C" __global__ void softmax_bwd_d(Geom g, int n, i64 sy, i64 sg, i64 sgx, int logMode, const void* y, int ydt, const void* gy, int gdt, void* gx, int xdt) {
  softmax_bwd_impl<double>(g, n, sy, sg, sgx, logMode, y, ydt, gy, gdt, gx, xdt);
}

// A tensor argument of the layer-norm kernels: base pointer, dtype, element offset, stride (for w and b).
struct TArg {
  const void* p;
  int dt;
  int pad;
  i64 off;
  i64 stride;
};

// Rows of x (contiguous, n elements each); y contiguous; mean/rstd one element per row. w/b may be null.
// Three passes over the row (mean, variance, write): the re-reads hit L1, and keeping the row out of
// registers keeps the kernel at ~40 registers (a register-cached variant needed 183 and ran at 1/10 of the
// bandwidth: one block per SM).
template <typename A> __device__ void layernorm_impl(i64 rows, int n, double eps, TArg x, TArg w, TArg b, TArg y, TArg mean, TArg rstd) {
  __shared__ A sh[32];
  for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
    i64 base = x.off + r * n;
    A sum = (A)0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) sum += load<A>(x.p, x.dt, base + i);
    A mu = block_sum(sum, sh) / (A)n;
    A sq = (A)0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) { A d = load<A>(x.p, x.dt, base + i) - mu; sq += d * d; }
    A rs = (A)1 / m_sqrt(block_sum(sq, sh) / (A)n + (A)eps);
    if (threadIdx.x == 0) {
      store<A>((void*)mean.p, mean.dt, mean.off + r, mu);
      store<A>((void*)rstd.p, rstd.dt, rstd.off + r, rs);
    }
    i64 ybase = y.off + r * n;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
      A v = (load<A>(x.p, x.dt, base + i) - mu) * rs;
      if (w.p) v *= load<A>(w.p, w.dt, w.off + i * w.stride);
      if (b.p) v += load<A>(b.p, b.dt, b.off + i * b.stride);
      store<A>((void*)y.p, y.dt, ybase + i, v);
    }
  }
}

extern "C" __global__ void layernorm_f(i64 rows, int n, double eps, TArg x, TArg w, TArg b, TArg y, TArg mean, TArg rstd) {
  layernorm_impl<float>(rows, n, eps, x, w, b, y, mean, rstd);
}
extern "C" __global__ void layernorm_d(i64 rows, int n, double eps, TArg x, TArg w, TArg b, TArg y, TArg mean, TArg rstd) {
  layernorm_impl<double>(rows, n, eps, x, w, b, y, mean, rstd);
}

// v rounded to dtype dt as store<A> would round it, back in A.
template <typename A> __device__ __forceinline__ A round_as(int dt, A v) {
  switch (dt) {
    case DT_F32: return (A)(float)v;
    case DT_BF16: return (A)bf16_to_f(f_to_bf16((float)v));
    case DT_F16: return (A)f16_to_f(f_to_f16((float)v));
    default: return v;
  }
}
__device__ __forceinline__ float add_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double add_rn(double a, double b) { return __dadd_rn(a, b); }

// gx for each row: rs * (g*w - mean(g*w) - xhat * mean(g*w*xhat)). gy, x, gx contiguous rows. acc (null, or contiguous
// rows of gx's dtype): a gradient already pending for x, stored as acc + gx with gx first rounded to its dtype and the
// add uncontracted, which is what the separate elementwise add of acc and the plain gx computes.
template <typename A> __device__ void layernorm_bwd_impl(i64 rows, int n, TArg gy, TArg x, TArg w, TArg mean, TArg rstd, TArg gx,
                                                         TArg acc) {
  __shared__ A sh[32];
  for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
    A mu = load<A>(mean.p, mean.dt, mean.off + r), rs = load<A>(rstd.p, rstd.dt, rstd.off + r);
    i64 xb = x.off + r * n, gb = gy.off + r * n;
    A sg = (A)0, sgx = (A)0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
      A xhat = (load<A>(x.p, x.dt, xb + i) - mu) * rs;
      A g = load<A>(gy.p, gy.dt, gb + i);
      if (w.p) g *= load<A>(w.p, w.dt, w.off + i * w.stride);
      sg += g;
      sgx += g * xhat;
    }
    sg = block_sum(sg, sh) / (A)n;
    sgx = block_sum(sgx, sh) / (A)n;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
      A xhat = (load<A>(x.p, x.dt, xb + i) - mu) * rs;
      A g = load<A>(gy.p, gy.dt, gb + i);
      if (w.p) g *= load<A>(w.p, w.dt, w.off + i * w.stride);
      A v = rs * (g - sg - xhat * sgx);
      if (acc.p) v = add_rn(load<A>(acc.p, acc.dt, acc.off + r * n + i), round_as<A>(gx.dt, v));
      store<A>((void*)gx.p, gx.dt, gx.off + r * n + i, v);
    }
  }
}

extern "C" __global__ void layernorm_bwd_f(i64 rows, int n, TArg gy, TArg x, TArg w, TArg mean, TArg rstd, TArg gx, TArg acc) {
  layernorm_bwd_impl<float>(rows, n, gy, x, w, mean, rstd, gx, acc);
}
extern "C" __global__ void layernorm_bwd_d(i64 rows, int n, TArg gy, TArg x, TArg w, TArg mean, TArg rstd, TArg gx, TArg acc) {
  layernorm_bwd_impl<double>(rows, n, gy, x, w, mean, rstd, gx, acc);
}

// Partial column sums of g*xhat and g over a chunk of rows: grid (ceil(n/256), chunks), block 256.
// pw/pb are [chunks, n] accumulation buffers (A precision).
template <typename A> __device__ void layernorm_wb_partial_impl(i64 rows, int n, i64 rowsPerChunk, TArg gy, TArg x, TArg mean, TArg rstd, A* pw, A* pb) {
  int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= n) return;
  i64 r0 = (i64)blockIdx.y * rowsPerChunk, r1 = r0 + rowsPerChunk < rows ? r0 + rowsPerChunk : rows;
  A aw = (A)0, ab = (A)0;
  for (i64 r = r0; r < r1; r++) {
    A mu = load<A>(mean.p, mean.dt, mean.off + r), rs = load<A>(rstd.p, rstd.dt, rstd.off + r);
    A g = load<A>(gy.p, gy.dt, gy.off + r * n + c);
    aw += g * (load<A>(x.p, x.dt, x.off + r * n + c) - mu) * rs;
    ab += g;
  }
  pw[(i64)blockIdx.y * n + c] = aw;
  pb[(i64)blockIdx.y * n + c] = ab;
}

extern "C" __global__ void layernorm_wb_partial_f(i64 rows, int n, i64 rpc, TArg gy, TArg x, TArg mean, TArg rstd, float* pw, float* pb) {
  layernorm_wb_partial_impl<float>(rows, n, rpc, gy, x, mean, rstd, pw, pb);
}
extern "C" __global__ void layernorm_wb_partial_d(i64 rows, int n, i64 rpc, TArg gy, TArg x, TArg mean, TArg rstd, double* pw, double* pb) {
  layernorm_wb_partial_impl<double>(rows, n, rpc, gy, x, mean, rstd, pw, pb);
}

// Sums the partials over chunks into gw/gb (either may be null).
template <typename A> __device__ void layernorm_wb_final_impl(int n, int chunks, const A* pw, const A* pb, TArg gw, TArg gb) {
  int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= n) return;
  A aw = (A)0, ab = (A)0;
  for (int k = 0; k < chunks; k++) { aw += pw[(i64)k * n + c]; ab += pb[(i64)k * n + c]; }
  if (gw.p) store<A>((void*)gw.p, gw.dt, gw.off + c * gw.stride, aw);
  if (gb.p) store<A>((void*)gb.p, gb.dt, gb.off + c * gb.stride, ab);
}

extern "C" __global__ void layernorm_wb_final_f(int n, int chunks, const float* pw, const float* pb, TArg gw, TArg gb) {
  layernorm_wb_final_impl<float>(n, chunks, pw, pb, gw, gb);
}
// The same sums when there are many chunks (hundreds of per-block partials): a block of 8 warps per 32 columns,
// lane = column (128-byte reads), warp w adding chunks w, w + 8, ... and the 8 warp sums then added in warp order, so
// the result does not depend on timing. The one-thread-per-column kernel above walks all chunks serially.
extern "C" __global__ void wb_final_wide_f(int n, int chunks, const float* pw, const float* pb, TArg gw, TArg gb) {
  __shared__ float sw[8][32], sb[8][32];
  int lane = threadIdx.x & 31, w = threadIdx.x >> 5, c = blockIdx.x * 32 + lane;
  float aw = 0.f, ab = 0.f;
  if (c < n)
    for (int k = w; k < chunks; k += 8) { aw += pw[(i64)k * n + c]; ab += pb[(i64)k * n + c]; }
  sw[w][lane] = aw;
  sb[w][lane] = ab;
  __syncthreads();
  if (w != 0 || c >= n) return;
  aw = 0.f;
  ab = 0.f;
#pragma unroll
  for (int k = 0; k < 8; k++) { aw += sw[k][lane]; ab += sb[k][lane]; }
  if (gw.p) store<float>((void*)gw.p, gw.dt, gw.off + c * gw.stride, aw);
  if (gb.p) store<float>((void*)gb.p, gb.dt, gb.off + c * gb.stride, ab);
}
extern "C" __global__ void layernorm_wb_final_d(int n, int chunks, const double* pw, const double* pb, TArg gw, TArg gb) {
  layernorm_wb_final_impl<double>(n, chunks, pw, pb, gw, gb);
}
