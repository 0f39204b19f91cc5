// Reductions. The host splits x's dims into kept dims (one output each) and reduced dims, coalesced,
// and picks a kernel: reduce_rows (a block per output, threads over the reduced elements: for reductions
// over x's innermost dim) or reduce_cols (threads over outputs, for reductions over outer dims so that
// neighbouring threads read neighbouring elements). Op codes are io.colossal4j.backend.ReduceOp ordinals:
// 0 SUM, 1 MEAN, 2 MAX, 3 MIN, 4 PROD, 5 ARGMAX, 6 ARGMIN.

struct RGeom {  // 296 bytes, laid out by CudaGeometry.java
  i64 nout;
  i64 nred;
  int krank;
  int rrank;
  int kshape[MAXR];
  int rshape[MAXR];
  i64 kxs[MAXR];  // kept dims: x strides
  i64 kos[MAXR];  // kept dims: out strides
  i64 rxs[MAXR];  // reduced dims: x strides
  i64 xoff;
  i64 ooff;
};

__device__ __forceinline__ void kept_offsets(const RGeom& g, i64 o, i64* xo, i64* oo) {
  i64 x = g.xoff, y = g.ooff;
  for (int d = g.krank - 1; d >= 0; d--) {
    i64 s = g.kshape[d];
    i64 idx = o % s;
    o /= s;
    x += idx * g.kxs[d];
    y += idx * g.kos[d];
  }
  *xo = x;
  *oo = y;
}

__device__ __forceinline__ i64 reduced_offset(const RGeom& g, i64 j) {
  i64 x = 0;
  for (int d = g.rrank - 1; d >= 0; d--) {
    i64 s = g.rshape[d];
    x += (j % s) * g.rxs[d];
    j /= s;
  }
  return x;
}

// A partial result: value, and for ARGMAX/ARGMIN the index of that value.
template <typename A> struct Part {
  A v;
  i64 i;
};

template <typename A> __device__ __forceinline__ Part<A> r_init(int op) {
  Part<A> p;
  p.i = 0x7fffffffffffffffLL;  // "no element yet" for arg reductions
  switch (op) {
    case 4: p.v = (A)1; break;
    case 2: p.v = -m_inf<A>(); break;
    case 3: p.v = m_inf<A>(); break;
    default: p.v = (A)0;
  }
  return p;
}

// Combines two partials; for arg reductions a NaN wins (the first one), else the larger (smaller) value,
// ties going to the lower index, as the reference's left-to-right scan does.
template <typename A> __device__ __forceinline__ Part<A> r_combine(int op, Part<A> a, Part<A> b) {
  switch (op) {
    case 0: case 1: a.v = a.v + b.v; return a;
    case 4: a.v = a.v * b.v; return a;
    case 2: a.v = (m_isnan(a.v) || m_isnan(b.v)) ? m_nan<A>() : (a.v > b.v ? a.v : b.v); return a;
    case 3: a.v = (m_isnan(a.v) || m_isnan(b.v)) ? m_nan<A>() : (a.v < b.v ? a.v : b.v); return a;
    default: {
      if (b.i == 0x7fffffffffffffffLL) return a;
      if (a.i == 0x7fffffffffffffffLL) return b;
      bool an = m_isnan(a.v), bn = m_isnan(b.v);
      if (an || bn) return (an && bn) ? (a.i < b.i ? a : b) : (an ? a : b);
      bool better = op == 5 ? b.v > a.v : b.v < a.v;
      if (better || (b.v == a.v && b.i < a.i)) return b;
      return a;
    }
  }
}

template <typename A> __device__ __forceinline__ Part<A> r_shfl(Part<A> p, int delta) {
  Part<A> q;
  q.v = __shfl_down_sync(0xffffffffu, p.v, delta);
  q.i = __shfl_down_sync(0xffffffffu, p.i, delta);
  return q;
}

template <typename A> __device__ void r_store(const RGeom& g, int op, void* out, int odt, i64 oo, Part<A> p) {
  if (op == 5 || op == 6) {
    store<double>(out, odt, oo, (double)(p.i == 0x7fffffffffffffffLL ? 0 : p.i));
  } else {
    A v = p.v;
    if (op == 1) v = v * (A)(1.0 / (double)g.nred);
    store<A>(out, odt, oo, v);
  }
}

// Combines the block's partials (blockDim.x a multiple of 32, at most 1024): the whole block calls it; the result is
// complete in thread 0 only. The shared arrays must not be in use by another combine of the same block.
template <typename A> __device__ __forceinline__ Part<A> block_combine(int op, Part<A> acc, A* sv, i64* si) {
  for (int d = 16; d > 0; d >>= 1) acc = r_combine<A>(op, acc, r_shfl<A>(acc, d));
  int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if (lane == 0) { sv[warp] = acc.v; si[warp] = acc.i; }
  __syncthreads();
  Part<A> p = r_init<A>(op);
  if (warp == 0) {
    if (lane < (int)(blockDim.x >> 5)) { p.v = sv[lane]; p.i = si[lane]; }
    for (int d = 16; d > 0; d >>= 1) p = r_combine<A>(op, p, r_shfl<A>(p, d));
  }
  __syncthreads();
  return p;
}

// One block (blockDim.x a multiple of 32, at most 1024) per output.
template <typename A> __device__ void reduce_rows_impl(RGeom g, int op, const void* x, int xdt, void* out, int odt) {
  __shared__ A sv[32];
  __shared__ i64 si[32];
  for (i64 o = blockIdx.x; o < g.nout; o += gridDim.x) {
    i64 xo, oo;
    kept_offsets(g, o, &xo, &oo);
    Part<A> acc = r_init<A>(op);
    for (i64 j = threadIdx.x; j < g.nred; j += blockDim.x) {
      Part<A> e;
      e.v = load<A>(x, xdt, xo + reduced_offset(g, j));
      e.i = j;
      acc = r_combine<A>(op, acc, e);
    }
    Part<A> p = block_combine<A>(op, acc, sv, si);
    if (threadIdx.x == 0) r_store<A>(g, op, out, odt, oo, p);
  }
}

extern "C" __global__ void reduce_rows_f(RGeom g, int op, const void* x, int xdt, void* out, int odt) { reduce_rows_impl<float>(g, op, x, xdt, out, odt); }
extern "C" __global__ void reduce_rows_d(RGeom g, int op, const void* x, int xdt, void* out, int odt) { reduce_rows_impl<double>(g, op, x, xdt, out, odt); }

// ARGMAX (op 5) / ARGMIN (6) over the last dim of contiguous rows of n (a multiple of 8, below 2^31) bf16 or f32
// values, 16-byte aligned, into an i64 index per row: one block per row (grid-stride over rows), 8 values per load.
// The index is the generic kernel's (a NaN wins, the first one; ties go to the lower index). A GPT's top-1 accuracy
// scans its [tokens, vocab] logits every step. Each thread first scans its own elements, which come in increasing
// index order, so "ties to the lower index" is a strict comparison and "the first NaN" is: take a NaN only while
// the best is not one; a 32-bit index and no partial per element (the combine with its 64-bit indices and NaN
// rules, per element, held the kernel at a quarter of the memory's speed); the threads' results then go through
// the same block combine as reduce_rows.
template <typename TX, bool MAX> __device__ void arg_rows_dense_impl(i64 rows, int n, const TX* x, i64* out) {
  __shared__ float sv[32];
  __shared__ i64 si[32];
  int nv = n / 8;
  for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
    const TX* xr = x + r * n;
    float best = 0.f;
    int at = -1;   // none yet: the thread's first element is taken whatever it is
    for (int v = threadIdx.x; v < nv; v += blockDim.x) {
      float f[8];
      ld8(xr + (i64)v * 8, f);
#pragma unroll
      for (int j = 0; j < 8; j++) {
        bool beats = MAX ? f[j] > best : f[j] < best;
        if (at < 0 || (best == best && (beats || f[j] != f[j]))) { best = f[j]; at = v * 8 + j; }
      }
    }
    Part<float> acc;
    acc.v = best;
    acc.i = at < 0 ? 0x7fffffffffffffffLL : (i64)at;
    Part<float> p = block_combine<float>(MAX ? 5 : 6, acc, sv, si);
    if (threadIdx.x == 0) out[r] = p.i == 0x7fffffffffffffffLL ? 0 : p.i;
  }
}

extern "C" __global__ void arg_rows_dense_b(int op, i64 rows, int n, const void* x, i64* out) {
  if (op == 5) arg_rows_dense_impl<u16, true>(rows, n, (const u16*)x, out); else arg_rows_dense_impl<u16, false>(rows, n, (const u16*)x, out);
}
extern "C" __global__ void arg_rows_dense_f(int op, i64 rows, int n, const void* x, i64* out) {
  if (op == 5) arg_rows_dense_impl<float, true>(rows, n, (const float*)x, out); else arg_rows_dense_impl<float, false>(rows, n, (const float*)x, out);
}

// Block (32, 8): threadIdx.x picks the output, threadIdx.y strides over the reduced elements.
template <typename A> __device__ void reduce_cols_impl(RGeom g, int op, const void* x, int xdt, void* out, int odt) {
  __shared__ A sv[8][33];
  __shared__ i64 si[8][33];
  i64 o = (i64)blockIdx.x * 32 + threadIdx.x;
  Part<A> acc = r_init<A>(op);
  i64 xo = 0, oo = 0;
  if (o < g.nout) {
    kept_offsets(g, o, &xo, &oo);
    for (i64 j = threadIdx.y; j < g.nred; j += 8) {
      Part<A> e;
      e.v = load<A>(x, xdt, xo + reduced_offset(g, j));
      e.i = j;
      acc = r_combine<A>(op, acc, e);
    }
  }
  sv[threadIdx.y][threadIdx.x] = acc.v;
  si[threadIdx.y][threadIdx.x] = acc.i;
  __syncthreads();
  if (threadIdx.y == 0 && o < g.nout) {
    Part<A> p = r_init<A>(op);
    for (int k = 0; k < 8; k++) {
      Part<A> e;
      e.v = sv[k][threadIdx.x];
      e.i = si[k][threadIdx.x];
      p = r_combine<A>(op, p, e);
    }
    r_store<A>(g, op, out, odt, oo, p);
  }
}

extern "C" __global__ void reduce_cols_f(RGeom g, int op, const void* x, int xdt, void* out, int odt) { reduce_cols_impl<float>(g, op, x, xdt, out, odt); }
extern "C" __global__ void reduce_cols_d(RGeom g, int op, const void* x, int xdt, void* out, int odt) { reduce_cols_impl<double>(g, op, x, xdt, out, odt); }

// Column sums of a contiguous [rows, n] bf16 or f32 matrix (a sum over the leading dims, e.g. a linear
// layer's bias gradient): two columns per thread through one 4- or 8-byte load, so a warp reads whole
// 128-byte lines of a row, and rows unrolled so several loads are in flight; each block (grid.y) sums one
// chunk of rows into f32 partials [chunks, n], which layernorm_wb_final_f then adds up. n even.
template <bool BF> __device__ void colsum_vec_impl(i64 rows, int n, i64 rowsPerChunk, const void* x, float* part) {
  int c = 2 * (blockIdx.x * blockDim.x + threadIdx.x);
  if (c >= n) return;
  i64 r0 = (i64)blockIdx.y * rowsPerChunk, r1 = r0 + rowsPerChunk < rows ? r0 + rowsPerChunk : rows;
  float a0 = 0.f, a1 = 0.f;
#pragma unroll 8
  for (i64 r = r0; r < r1; r++) {
    if (BF) {
      unsigned v = *(const unsigned*)((const u16*)x + r * n + c);
      a0 += bf16_to_f((u16)(v & 0xffffu));
      a1 += bf16_to_f((u16)(v >> 16));
    } else {
      float2 v = *(const float2*)((const float*)x + r * n + c);
      a0 += v.x;
      a1 += v.y;
    }
  }
  part[(i64)blockIdx.y * n + c] = a0;
  part[(i64)blockIdx.y * n + c + 1] = a1;
}

extern "C" __global__ void colsum_vec_bf16(i64 rows, int n, i64 rpc, const void* x, float* part) { colsum_vec_impl<true>(rows, n, rpc, x, part); }
extern "C" __global__ void colsum_vec_f32(i64 rows, int n, i64 rpc, const void* x, float* part) { colsum_vec_impl<false>(rows, n, rpc, x, part); }
