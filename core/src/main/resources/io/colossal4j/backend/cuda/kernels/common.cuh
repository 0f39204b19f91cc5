// Shared definitions for every colossal4j CUDA kernel. The Java side (CudaModule) concatenates this file
// with the kernel files and compiles the whole with NVRTC for the device's architecture; no system headers
// are needed. Dtype codes are io.colossal4j.tensor.DType ordinals.
typedef long long i64;
typedef unsigned long long u64;
typedef unsigned short u16;

#define MAXR 8
#define DT_F32 0
#define DT_F64 1
#define DT_BF16 2
#define DT_F16 3
#define DT_I32 4
#define DT_I64 5
#define DT_BOOL 6

// Geometry of an elementwise launch over up to four operands: the (coalesced) shape, each operand's
// element strides and element offset. Passed by value (336 bytes), laid out by CudaGeometry.java.
struct Geom {
  i64 numel;
  int rank;
  int nops;
  int shape[MAXR];
  i64 strides[4][MAXR];
  i64 offsets[4];
};

__device__ __forceinline__ float bf16_to_f(u16 h) { return __uint_as_float(((unsigned)h) << 16); }

// Round to nearest even (subnormals kept, overflow to infinity) by the hardware's conversion (sm_80 and later), one
// instruction where the bit arithmetic took six; a NaN becomes the canonical quiet NaN 0x7fff (HalfFloats.toBf16 on
// the CPU keeps the sign and payload: both are NaN, which is what every comparison of the two asks).
__device__ __forceinline__ u16 f_to_bf16(float f) {
  u16 r;
  asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(r) : "f"(f));
  return r;
}
// Two floats to a packed pair, lo in the low half (the order of memory), by one conversion instruction.
__device__ __forceinline__ unsigned f2_to_bf16x2(float lo, float hi) {
  unsigned r;
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
}

// One instruction of the special-function unit, with none of the fix-ups around it that exp2f and 1.0f/x add
// (denormal ranges, full-precision division): for callers whose results round to 16 bits, or whose operands stay
// in ranges where the approximation is exact enough (each caller says why). The .ftz forms flush subnormal inputs
// and results to zero.
#define C4J_SFU(name, instruction) \
  __device__ __forceinline__ float name(float x) { \
    float y; \
    asm(instruction " %0, %1;" : "=f"(y) : "f"(x)); \
    return y; \
  }
C4J_SFU(ex2_sfu, "ex2.approx.f32")
C4J_SFU(rcp_sfu, "rcp.approx.f32")
C4J_SFU(ex2_sfu_ftz, "ex2.approx.ftz.f32")
C4J_SFU(rcp_sfu_ftz, "rcp.approx.ftz.f32")
#undef C4J_SFU

__device__ __forceinline__ float f16_to_f(u16 h) {
  float f;
  asm("{ .reg .b16 t; mov.b16 t, %1; cvt.f32.f16 %0, t; }" : "=f"(f) : "h"(h));
  return f;
}

__device__ __forceinline__ u16 f_to_f16(float f) {
  u16 h;
  asm("{ .reg .b16 t; cvt.rn.f16.f32 t, %1; mov.b16 %0, t; }" : "=h"(h) : "f"(f));
  return h;
}

// Loads element i (element offset from base) of dtype dt as the accumulation type A.
template <typename A> __device__ __forceinline__ A load(const void* base, int dt, i64 i) {
  switch (dt) {
    case DT_F32: return (A)((const float*)base)[i];
    case DT_F64: return (A)((const double*)base)[i];
    case DT_BF16: return (A)bf16_to_f(((const u16*)base)[i]);
    case DT_F16: return (A)f16_to_f(((const u16*)base)[i]);
    case DT_I32: return (A)((const int*)base)[i];
    case DT_I64: return (A)((const i64*)base)[i];
    default: return ((const unsigned char*)base)[i] ? (A)1 : (A)0;
  }
}

// Java's (int)/(long) casts: truncate toward zero, saturate, NaN -> 0 (the PTX cvt.rzi conversions do the same).
__device__ __forceinline__ int to_i32(double v) { return (int)v; }
__device__ __forceinline__ i64 to_i64(double v) { return (i64)v; }

// Stores v converted to dt: floats round to nearest even (f64 -> f32 first for the 16-bit formats, as the reference).
template <typename A> __device__ __forceinline__ void store(void* base, int dt, i64 i, A v) {
  switch (dt) {
    case DT_F32: ((float*)base)[i] = (float)v; break;
    case DT_F64: ((double*)base)[i] = (double)v; break;
    case DT_BF16: ((u16*)base)[i] = f_to_bf16((float)v); break;
    case DT_F16: ((u16*)base)[i] = f_to_f16((float)v); break;
    case DT_I32: ((int*)base)[i] = to_i32((double)v); break;
    case DT_I64: ((i64*)base)[i] = to_i64((double)v); break;
    default: ((unsigned char*)base)[i] = (v != (A)0) ? 1 : 0;
  }
}

// Element offsets of the linear (row-major) index for the first n operands of g.
__device__ __forceinline__ void offsets_of(const Geom& g, i64 linear, int n, i64* off) {
  for (int k = 0; k < n; k++) off[k] = g.offsets[k];
  for (int d = g.rank - 1; d >= 0; d--) {
    i64 size = g.shape[d];
    i64 idx = linear % size;
    linear /= size;
    for (int k = 0; k < n; k++) off[k] += idx * g.strides[k][d];
  }
}

// Float and double versions of the math functions, so templates pick the right precision.
__device__ __forceinline__ float m_exp(float x) { return expf(x); }
__device__ __forceinline__ double m_exp(double x) { return exp(x); }
__device__ __forceinline__ float m_log(float x) { return logf(x); }
__device__ __forceinline__ double m_log(double x) { return log(x); }
__device__ __forceinline__ float m_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double m_sqrt(double x) { return sqrt(x); }
__device__ __forceinline__ float m_tanh(float x) { return tanhf(x); }
__device__ __forceinline__ double m_tanh(double x) { return tanh(x); }
__device__ __forceinline__ float m_erf(float x) { return erff(x); }
__device__ __forceinline__ double m_erf(double x) { return erf(x); }
__device__ __forceinline__ float m_erfc(float x) { return erfcf(x); }
__device__ __forceinline__ double m_erfc(double x) { return erfc(x); }
__device__ __forceinline__ float m_sin(float x) { return sinf(x); }
__device__ __forceinline__ double m_sin(double x) { return sin(x); }
__device__ __forceinline__ float m_cos(float x) { return cosf(x); }
__device__ __forceinline__ double m_cos(double x) { return cos(x); }
__device__ __forceinline__ float m_floor(float x) { return floorf(x); }
__device__ __forceinline__ double m_floor(double x) { return floor(x); }
__device__ __forceinline__ float m_pow(float x, float y) { return powf(x, y); }
__device__ __forceinline__ double m_pow(double x, double y) { return pow(x, y); }
__device__ __forceinline__ float m_abs(float x) { return fabsf(x); }
__device__ __forceinline__ double m_abs(double x) { return fabs(x); }
__device__ __forceinline__ bool m_isnan(float x) { return x != x; }
__device__ __forceinline__ bool m_isnan(double x) { return x != x; }

template <typename A> __device__ __forceinline__ A m_inf() { return (A)__int_as_float(0x7f800000); }
template <typename A> __device__ __forceinline__ A m_nan() { return (A)__int_as_float(0x7fc00000); }

// Grid-stride loop over [0, n).
#define GRID_LOOP(i, n) for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (i64)blockDim.x * gridDim.x)
