// Elementwise kernels for dense operands: every operand contiguous, bf16 or f32, 16-byte aligned. Each
// thread moves 8 elements per step with 16-byte loads and stores (one uint4 of bf16, two float4 of f32) and
// no index arithmetic; the n % 8 tail is done element by element. Values are computed in float with the
// same unary_op / binary_op as the strided kernels in elementwise.cu, so both paths give identical results
// (with LOW = true, the cheaper GELU math, exactly when the output is bf16, in both).
// Entry points are named by operand types: b = bf16, f = f32 (ew_binary_bbf: bf16 a, bf16 b, f32 out).

__device__ __forceinline__ void ld8(const u16* p, float* f) {
  uint4 r = *(const uint4*)p;
  unsigned w[4] = {r.x, r.y, r.z, r.w};
#pragma unroll
  for (int i = 0; i < 4; i++) { f[2 * i] = bf16_to_f((u16)(w[i] & 0xffffu)); f[2 * i + 1] = bf16_to_f((u16)(w[i] >> 16)); }
}
__device__ __forceinline__ void ld8(const float* p, float* f) {
  float4 a = ((const float4*)p)[0], b = ((const float4*)p)[1];
  f[0] = a.x; f[1] = a.y; f[2] = a.z; f[3] = a.w; f[4] = b.x; f[5] = b.y; f[6] = b.z; f[7] = b.w;
}
__device__ __forceinline__ void st8(u16* p, const float* f) {
  unsigned w[4];
#pragma unroll
  for (int i = 0; i < 4; i++) w[i] = f2_to_bf16x2(f[2 * i], f[2 * i + 1]);
  *(uint4*)p = make_uint4(w[0], w[1], w[2], w[3]);
}
__device__ __forceinline__ void st8(float* p, const float* f) {
  ((float4*)p)[0] = make_float4(f[0], f[1], f[2], f[3]);
  ((float4*)p)[1] = make_float4(f[4], f[5], f[6], f[7]);
}
__device__ __forceinline__ float ld1(const u16* p) { return bf16_to_f(*p); }
__device__ __forceinline__ float ld1(const float* p) { return *p; }
__device__ __forceinline__ void st1(u16* p, float v) { *p = f_to_bf16(v); }
__device__ __forceinline__ void st1(float* p, float v) { *p = v; }

// 8 elements as loaded (16 bytes of bf16, 32 of f32), converted to float only when their math starts.
template <typename T> struct Raw8;
template <> struct Raw8<u16> {
  uint4 v;
  __device__ __forceinline__ void load(const u16* p) { v = *(const uint4*)p; }
  __device__ __forceinline__ void to(float* f) const {
    unsigned w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int i = 0; i < 4; i++) { f[2 * i] = bf16_to_f((u16)(w[i] & 0xffffu)); f[2 * i + 1] = bf16_to_f((u16)(w[i] >> 16)); }
  }
};
template <> struct Raw8<float> {
  float4 a, b;
  __device__ __forceinline__ void load(const float* p) { a = ((const float4*)p)[0]; b = ((const float4*)p)[1]; }
  __device__ __forceinline__ void to(float* f) const {
    f[0] = a.x; f[1] = a.y; f[2] = a.z; f[3] = a.w; f[4] = b.x; f[5] = b.y; f[6] = b.z; f[7] = b.w;
  }
};

// Each kernel walks 8-element vectors v = 0 .. n/8 - 1 (grid-stride), then the tail elements one by one.
template <typename TO> struct LowOut { static constexpr bool value = false; };
template <> struct LowOut<u16> { static constexpr bool value = true; };

#define VEC_THREAD i64 nv = n / 8, stride = (i64)blockDim.x * gridDim.x, first = (i64)blockIdx.x * blockDim.x + threadIdx.x

// OP >= 0: the op is a compile-time constant (the switch in binary_op/unary_op folds away and the 8 lanes'
// math interleaves: GELU and its backward are bound by arithmetic, not memory, otherwise); OP < 0: runtime op.
template <typename TA, typename TB, typename TO, int OP> __device__ void ew_binary_impl(int rop, i64 n, const TA* a, const TB* b, TO* out) {
  const int op = OP >= 0 ? OP : rop;
  VEC_THREAD;
  for (i64 v = first; v < nv; v += stride) {
    float x[8];
    float y[8];
    ld8(a + v * 8, x);
    ld8(b + v * 8, y);
#pragma unroll
    for (int j = 0; j < 8; j++) x[j] = binary_op<float, LowOut<TO>::value>(op, x[j], y[j]);
    st8(out + v * 8, x);
  }
  for (i64 i = nv * 8 + first; i < n; i += stride) st1(out + i, binary_op<float, LowOut<TO>::value>(op, ld1(a + i), ld1(b + i)));
}

template <typename TA, typename TO, int OP> __device__ void ew_binary_scalar_impl(int rop, i64 n, const TA* a, float s, TO* out) {
  const int op = OP >= 0 ? OP : rop;
  VEC_THREAD;
  for (i64 v = first; v < nv; v += stride) {
    float x[8];
    ld8(a + v * 8, x);
#pragma unroll
    for (int j = 0; j < 8; j++) x[j] = binary_op<float, LowOut<TO>::value>(op, x[j], s);
    st8(out + v * 8, x);
  }
  for (i64 i = nv * 8 + first; i < n; i += stride) st1(out + i, binary_op<float, LowOut<TO>::value>(op, ld1(a + i), s));
}

// op < 0: a conversion (the identity in float).
template <typename TX, typename TO, int OP> __device__ void ew_unary_impl(int rop, i64 n, const TX* x, TO* out) {
  const int op = OP >= 0 ? OP : rop;
  VEC_THREAD;
  for (i64 v = first; v < nv; v += stride) {
    float f[8];
    ld8(x + v * 8, f);
    if (op >= 0) {
#pragma unroll
      for (int j = 0; j < 8; j++) f[j] = unary_op<float, LowOut<TO>::value>(op, f[j]);
    }
    st8(out + v * 8, f);
  }
  for (i64 i = nv * 8 + first; i < n; i += stride) {
    float f = ld1(x + i);
    st1(out + i, op >= 0 ? unary_op<float, LowOut<TO>::value>(op, f) : f);
  }
}

// Hot ops get their own instantiation (op codes: BinaryOp ADD 0, MUL 2, GELU_BACKWARD 14, GELU_TANH_BACKWARD 15,
// SILU_BACKWARD 16; UnaryOp GELU 10, GELU_TANH 11, SILU 12); the rest share the runtime-op one.
#define EW_BIN(NAME, TA, TB, TO)                                                                     \
  extern "C" __global__ void ew_binary_##NAME(int op, i64 n, const void* a, const void* b, void* out) { \
    const TA* pa = (const TA*)a; const TB* pb = (const TB*)b; TO* po = (TO*)out;                      \
    switch (op) {                                                                                     \
      case 0: ew_binary_impl<TA, TB, TO, 0>(op, n, pa, pb, po); break;                                \
      case 2: ew_binary_impl<TA, TB, TO, 2>(op, n, pa, pb, po); break;                                \
      case 14: ew_binary_impl<TA, TB, TO, 14>(op, n, pa, pb, po); break;                              \
      case 15: ew_binary_impl<TA, TB, TO, 15>(op, n, pa, pb, po); break;                              \
      case 16: ew_binary_impl<TA, TB, TO, 16>(op, n, pa, pb, po); break;                              \
      default: ew_binary_impl<TA, TB, TO, -1>(op, n, pa, pb, po);                                     \
    }                                                                                                 \
  }
EW_BIN(bbb, u16, u16, u16) EW_BIN(bbf, u16, u16, float) EW_BIN(bfb, u16, float, u16) EW_BIN(bff, u16, float, float)
EW_BIN(fbb, float, u16, u16) EW_BIN(fbf, float, u16, float) EW_BIN(ffb, float, float, u16) EW_BIN(fff, float, float, float)

#define EW_UN(NAME, TX, TO)                                                                           \
  extern "C" __global__ void ew_unary_##NAME(int op, i64 n, const void* x, void* out) {               \
    const TX* px = (const TX*)x; TO* po = (TO*)out;                                                   \
    switch (op) {                                                                                     \
      case 10: ew_unary_impl<TX, TO, 10>(op, n, px, po); break;                                       \
      case 11: ew_unary_impl<TX, TO, 11>(op, n, px, po); break;                                       \
      case 12: ew_unary_impl<TX, TO, 12>(op, n, px, po); break;                                       \
      default: ew_unary_impl<TX, TO, -1>(op, n, px, po);                                              \
    }                                                                                                 \
  }                                                                                                   \
  extern "C" __global__ void ew_binary_scalar_##NAME(int op, i64 n, const void* a, float s, void* out) { \
    const TX* pa = (const TX*)a; TO* po = (TO*)out;                                                   \
    if (op == 2) ew_binary_scalar_impl<TX, TO, 2>(op, n, pa, s, po);                                  \
    else ew_binary_scalar_impl<TX, TO, -1>(op, n, pa, s, po);                                         \
  }
EW_UN(bb, u16, u16) EW_UN(bf, u16, float) EW_UN(fb, float, u16) EW_UN(ff, float, float)

// GELU backward fused with the column sums of its result, a linear layer's bias gradient (fc1's, in an MLP):
// x (the GELU input) and gy dense [rows, n], n % 8 == 0. Each thread owns 8 adjacent columns (16-byte accesses, so a
// warp covers 256 columns of a row) of one chunk of rows (grid.y): it writes gx = GELU'(x)·gy and adds the values
// as stored (rounded to TO) into f32 sums, written to part[chunk, n]; wb_final_wide_f then adds the chunks in a fixed
// order. One pass over x, gy and gx instead of a backward kernel and a second read of gx for the bias gradient.
__device__ __forceinline__ float as_stored(const u16*, float v) { return bf16_to_f(f_to_bf16(v)); }
__device__ __forceinline__ float as_stored(const float*, float v) { return v; }

template <typename TX, typename TG, typename TO, int OP>
__device__ void gelu_bwd_colsum_impl(i64 rows, int n, i64 rowsPerChunk, const TX* x, const TG* gy, TO* gx, float* part) {
  int c = 8 * (blockIdx.x * blockDim.x + threadIdx.x);
  if (c >= n) return;
  i64 r0 = (i64)blockIdx.y * rowsPerChunk, r1 = r0 + rowsPerChunk < rows ? r0 + rowsPerChunk : rows;
  float acc[8];
#pragma unroll
  for (int j = 0; j < 8; j++) acc[j] = 0.f;
  Raw8<TX> rx;   // software-pipelined: row r + 1's loads go out before row r's math (measured 4-6% faster on ViT-H's fc1)
  Raw8<TG> rg;
  if (r0 < r1) { rx.load(x + r0 * n + c); rg.load(gy + r0 * n + c); }
  for (i64 r = r0; r < r1; r++) {
    float a[8];
    float g[8];
    rx.to(a);
    rg.to(g);
    if (r + 1 < r1) { rx.load(x + (r + 1) * n + c); rg.load(gy + (r + 1) * n + c); }
#pragma unroll
    for (int j = 0; j < 8; j++) a[j] = binary_op<float, LowOut<TO>::value>(OP, a[j], g[j]);
    st8(gx + r * n + c, a);
#pragma unroll
    for (int j = 0; j < 8; j++) acc[j] += as_stored(gx, a[j]);
  }
  st8(part + (i64)blockIdx.y * n + c, acc);
}

// op: BinaryOp GELU_BACKWARD (14) or GELU_TANH_BACKWARD (15); the host checks it.
#define GELU_COLSUM(NAME, TX, TG, TO)                                                                                        \
  extern "C" __global__ void gelu_bwd_colsum_##NAME(int op, i64 rows, int n, i64 rpc, const void* x, const void* gy, void* gx, \
                                                    float* part) {                                                        \
    const TX* px = (const TX*)x; const TG* pg = (const TG*)gy; TO* po = (TO*)gx;                                          \
    if (op == 14) gelu_bwd_colsum_impl<TX, TG, TO, 14>(rows, n, rpc, px, pg, po, part);                                    \
    else gelu_bwd_colsum_impl<TX, TG, TO, 15>(rows, n, rpc, px, pg, po, part);                                             \
  }
GELU_COLSUM(bbb, u16, u16, u16) GELU_COLSUM(fff, float, float, float)
