// GELU uses erfc (in float a fitted erfc, see normal_cdf_pdf) and the tanh form a sigmoid, so the negative tail keeps its relative accuracy (1 + erf(x)
// and 1 + tanh(x) cancel there).
// Elementwise kernels over arbitrary strides (Geom), any dtype per operand. The _f entry points compute in
// float (all operands f32/bf16/f16/bool), the _d ones in double (an operand is f64 or an integer type), so
// results match the double reference within the precision of the stored type.
// Op codes are the ordinals of io.colossal4j.backend.UnaryOp / BinaryOp; KernelSourceTest checks the
// "case N: // NAME" labels below against those enums.

template <typename A> __device__ __forceinline__ A sigmoid_of(A x) {
  return x >= (A)0 ? (A)1 / ((A)1 + m_exp(-x)) : m_exp(x) / ((A)1 + m_exp(x));
}
// In float one exponential and a correctly rounded reciprocal, no branch: 1/(1 + e^-x) keeps its relative accuracy
// for x -> -inf too (the quotient of 1 by a huge number), and the warp never splits over the sign of x. (The
// hardware's ex2.approx/rcp.approx versions were faster but broke the 4-ulp bound of SIGMOID, KernelConformance.)
template <> __device__ __forceinline__ float sigmoid_of(float x) { return __frcp_rn(1.0f + expf(-x)); }

// The standard normal cdf and pdf, Phi(x) and phi(x), for GELU (x Phi(x)) and its derivative (Phi + x phi).
// double: from erfc and exp. float: erfc(a) = t Q(t) e^{-a^2} with a = |x|/sqrt(2), t = 1/(1 + a/2) and Q a degree-8
// fit (scripts/fit_gelu_erfc.py: 5.1e-8 relative over a in [0, 10]); a^2 is split exactly by an FMA (a^2 = h + l)
// and e^{-a^2} = e^{-h}(1 - l), phi(x) = e^{-a^2}/sqrt(2 pi) reusing it (expf and a correctly rounded reciprocal:
// the hardware's approximations would not keep GELU's 6-ulp bound). In the far tail the rounding of x/sqrt(2) itself
// dominates, as it did with erfcf. Branch-free: Phi(x) = erfc(a)/2 for x < 0, 1 - erfc(a)/2 otherwise; a is capped at
// 10 (erfc(10) = 2e-45).
__device__ __forceinline__ void normal_cdf_pdf(double x, double& cdf, double& pdf) {
  cdf = 0.5 * erfc(x * -0.7071067811865476);
  pdf = 0.3989422804014327 * exp(-0.5 * x * x);
}
__device__ __forceinline__ void normal_cdf_pdf(float x, float& cdf, float& pdf) {
  float a = fminf(fabsf(x) * 0.70710678118654752f, 10.0f);
  float t = __frcp_rn(fmaf(0.5f, a, 1.0f));
  float q = -5.886369941e-02f;
  q = fmaf(q, t, 2.836082495e-01f);
  q = fmaf(q, t, -4.852770731e-01f);
  q = fmaf(q, t, 2.759660057e-01f);
  q = fmaf(q, t, -2.525215967e-02f);
  q = fmaf(q, t, 2.021395013e-01f);
  q = fmaf(q, t, 2.432329998e-01f);
  q = fmaf(q, t, 2.823588547e-01f);
  q = fmaf(q, t, 2.820872797e-01f);
  float h = a * a, l = fmaf(a, a, -h);
  float e = expf(-h) * (1.0f - l);
  float half_erfc = 0.5f * t * q * e;
  cdf = x < 0.0f ? half_erfc : 1.0f - half_erfc;
  pdf = 0.39894228040143268f * e;
}

// Cheaper GELU for results stored as bf16 (LOW = true below): bf16 keeps 8 significant bits, so the float
// intermediate needs only ~2^-16 relative accuracy, and the special-function unit's 2^x and 1/x (relative error
// ~2^-22; the non-ftz forms keep subnormal results) replace expf and the correctly rounded reciprocal; t's 1/(1 + a/2)
// takes the flush-to-zero form, exact here since its operand and result lie in [1/6, 6]. Errors: e^{-a^2} from ex2
// of a rounded -a^2 log2(e) (|arg| <= 145, so ~2^-16.5 relative at a = 10, far less near 0), t and the fit as in
// normal_cdf_pdf; the result stored to bf16 is within 1 bf16 ulp of the exact float path's (CudaGeluLowPrecisionTest
// sweeps every bf16 input). Float and f16 results keep the exact path. These kernels are bound by their arithmetic
// (~40 instructions an element against 4 to 6 bytes of traffic), so each instruction saved is time saved.

// Phi and phi with normal_cdf_pdf's degree-8 fit and e^{-a^2} from the non-flushing ex2 of -a^2 log2(e) (the
// backward's Phi + x phi crosses zero near x = -0.75, where only an absolute error far below bf16's spacing of the
// result keeps it within 1 ulp: the 2^64 scaling of the forward below would round the exponent 2^6 times coarser).
__device__ __forceinline__ void normal_cdf_pdf_low(float x, float& cdf, float& pdf) {
  float a = fminf(fabsf(x) * 0.70710678118654752f, 10.0f);
  float t = rcp_sfu_ftz(fmaf(0.5f, a, 1.0f));
  float q = -5.886369941e-02f;
  q = fmaf(q, t, 2.836082495e-01f);
  q = fmaf(q, t, -4.852770731e-01f);
  q = fmaf(q, t, 2.759660057e-01f);
  q = fmaf(q, t, -2.525215967e-02f);
  q = fmaf(q, t, 2.021395013e-01f);
  q = fmaf(q, t, 2.432329998e-01f);
  q = fmaf(q, t, 2.823588547e-01f);
  q = fmaf(q, t, 2.820872797e-01f);
  float e = ex2_sfu(a * a * -1.44269504088896341f);
  float half_erfc = 0.5f * t * q * e;
  cdf = x < 0.0f ? half_erfc : 1.0f - half_erfc;
  pdf = 0.39894228040143268f * e;
}
// Phi alone for GELU's forward, x Phi(x): a product, so Phi's relative error is the result's, and a degree-5 fit of
// Q (2.6e-5 relative, scripts/fit_gelu_erfc.py --degree 5) is far inside half a bf16 ulp (2^-9); so is the 2^64
// scaling of e^{-a^2} (ex2 of 64 - a^2 log2(e), within [-80.3, 64]: the exponent rounded to 2^-18, 1.3e-6 relative),
// which lets ex2 flush to zero without losing the subnormal tail (the 2^-64 is folded into the constant).
__device__ __forceinline__ float normal_cdf_low(float x) {
  float a = fminf(fabsf(x) * 0.70710678118654752f, 10.0f);
  float t = rcp_sfu_ftz(fmaf(0.5f, a, 1.0f));
  float q = -5.714995645e-02f;
  q = fmaf(q, t, -1.200666274e-02f);
  q = fmaf(q, t, 3.067869388e-01f);
  q = fmaf(q, t, 1.872539430e-01f);
  q = fmaf(q, t, 2.938297581e-01f);
  q = fmaf(q, t, 2.812603955e-01f);
  float e = ex2_sfu_ftz(fmaf(a * a, -1.44269504088896341f, 64.0f));
  float half_erfc = 0x1p-65f * t * q * e;
  return x < 0.0f ? half_erfc : 1.0f - half_erfc;
}
// Dispatch on LOW: the double overloads ignore it (double math is never the hot path).
template <bool LOW> __device__ __forceinline__ void gelu_cdf_pdf(double x, double& cdf, double& pdf) { normal_cdf_pdf(x, cdf, pdf); }
template <bool LOW> __device__ __forceinline__ void gelu_cdf_pdf(float x, float& cdf, float& pdf) {
  if (LOW) normal_cdf_pdf_low(x, cdf, pdf);
  else normal_cdf_pdf(x, cdf, pdf);
}
template <bool LOW> __device__ __forceinline__ double gelu_cdf(double x) { double cdf, pdf; normal_cdf_pdf(x, cdf, pdf); return cdf; }
template <bool LOW> __device__ __forceinline__ float gelu_cdf(float x) {
  if (LOW) return normal_cdf_low(x);
  float cdf, pdf;
  normal_cdf_pdf(x, cdf, pdf);
  return cdf;
}
template <bool LOW> __device__ __forceinline__ double gelu_sigmoid(double x) { return sigmoid_of(x); }
// 1/(1 + 2^{-x log2 e}): an infinite 2^ gives 0 as the exact form does; 1 + e up to 2^128 keeps a subnormal reciprocal
template <bool LOW> __device__ __forceinline__ float gelu_sigmoid(float x) {
  return LOW ? rcp_sfu(1.0f + ex2_sfu(x * -1.44269504088896341f)) : sigmoid_of(x);
}

template <typename A> __device__ __forceinline__ A gelu_tanh_inner(A x) {
  return (A)0.7978845608028654 * (x + (A)0.044715 * x * x * x);
}

// LOW: the result is stored as bf16 (GELU and GELU_TANH then take the cheaper math above).
template <typename A, bool LOW = false> __device__ __forceinline__ A unary_op(int op, A v) {
  switch (op) {
    case 0: return -v;  // NEG
    case 1: return m_abs(v);  // ABS
    case 2: return m_exp(v);  // EXP
    case 3: return m_log(v);  // LOG
    case 4: return m_sqrt(v);  // SQRT
    case 5: return (A)1 / m_sqrt(v);  // RSQRT
    case 6: return m_tanh(v);  // TANH
    case 7: return m_erf(v);  // ERF
    case 8: return sigmoid_of(v);  // SIGMOID
    case 9: return v > (A)0 ? v : (m_isnan(v) ? v : (A)0);  // RELU
    case 10: return v * gelu_cdf<LOW>(v);  // GELU
    case 11: return v * gelu_sigmoid<LOW>((A)2 * gelu_tanh_inner(v));  // GELU_TANH
    case 12: return v * sigmoid_of(v);  // SILU
    case 13: return v > (A)0 ? (A)1 : (v < (A)0 ? (A)-1 : v);  // SIGN
    case 14: return (A)1 / v;  // RECIPROCAL
    case 15: return v * v;  // SQUARE
    case 16: return m_sin(v);  // SIN
    case 17: return m_cos(v);  // COS
    case 18: return m_floor(v);  // FLOOR
    default: return m_nan<A>();
  }
}

// LOW: the result is stored as bf16 (GELU_BACKWARD and GELU_TANH_BACKWARD then take the cheaper math above).
template <typename A, bool LOW = false> __device__ __forceinline__ A binary_op(int op, A x, A y) {
  switch (op) {
    case 0: return x + y;  // ADD
    case 1: return x - y;  // SUB
    case 2: return x * y;  // MUL
    case 3: return x / y;  // DIV
    case 4: return m_pow(x, y);  // POW
    case 5: return (m_isnan(x) || m_isnan(y)) ? m_nan<A>() : (x > y ? x : y);  // MAX
    case 6: return (m_isnan(x) || m_isnan(y)) ? m_nan<A>() : (x < y ? x : y);  // MIN
    case 7: return x == y ? (A)1 : (A)0;  // EQ
    case 8: return x != y ? (A)1 : (A)0;  // NE
    case 9: return x < y ? (A)1 : (A)0;  // LT
    case 10: return x <= y ? (A)1 : (A)0;  // LE
    case 11: return x > y ? (A)1 : (A)0;  // GT
    case 12: return x >= y ? (A)1 : (A)0;  // GE
    case 13: return x > (A)0 ? y : (A)0;  // RELU_BACKWARD
    case 14: {  // GELU_BACKWARD
      A cdf, pdf;
      gelu_cdf_pdf<LOW>(x, cdf, pdf);
      return (cdf + x * pdf) * y;
    }
    case 15: {  // GELU_TANH_BACKWARD
      // 0.5 (1 + tanh u) = sigmoid(2u) and 1 - tanh^2 u = 4 s (1 - s): no cancellation for negative x
      A s = gelu_sigmoid<LOW>((A)2 * gelu_tanh_inner(x));
      A du = (A)0.7978845608028654 * ((A)1 + (A)3 * (A)0.044715 * x * x);
      return (s + (A)2 * x * s * ((A)1 - s) * du) * y;
    }
    case 16: {  // SILU_BACKWARD
      A s = sigmoid_of(x);
      return s * ((A)1 + x * ((A)1 - s)) * y;
    }
    case 17: {  // SIGMOID_BACKWARD
      A s = sigmoid_of(x);
      return s * ((A)1 - s) * y;
    }
    case 18: {  // TANH_BACKWARD
      A t = m_tanh(x);
      return ((A)1 - t * t) * y;
    }
    default: return m_nan<A>();
  }
}

template <typename A> __device__ void fill_impl(Geom g, void* out, int dt, A value) {
  GRID_LOOP(i, g.numel) {
    i64 off[1];
    offsets_of(g, i, 1, off);
    store<A>(out, dt, off[0], value);
  }
}

extern "C" __global__ void fill_f(Geom g, void* out, int dt, float value) { fill_impl<float>(g, out, dt, value); }
extern "C" __global__ void fill_d(Geom g, void* out, int dt, double value) { fill_impl<double>(g, out, dt, value); }

// Same-dtype copy moves the raw bytes (exact for i64 and NaN payloads); operand 0 = src, 1 = dst.
extern "C" __global__ void copy_raw(Geom g, const void* src, void* dst, int elemBytes) {
  GRID_LOOP(i, g.numel) {
    i64 off[2];
    offsets_of(g, i, 2, off);
    switch (elemBytes) {
      case 1: ((unsigned char*)dst)[off[1]] = ((const unsigned char*)src)[off[0]]; break;
      case 2: ((u16*)dst)[off[1]] = ((const u16*)src)[off[0]]; break;
      case 4: ((unsigned*)dst)[off[1]] = ((const unsigned*)src)[off[0]]; break;
      default: ((u64*)dst)[off[1]] = ((const u64*)src)[off[0]]; break;
    }
  }
}

template <typename A> __device__ void convert_impl(Geom g, const void* src, int sdt, void* dst, int ddt) {
  GRID_LOOP(i, g.numel) {
    i64 off[2];
    offsets_of(g, i, 2, off);
    store<A>(dst, ddt, off[1], load<A>(src, sdt, off[0]));
  }
}

extern "C" __global__ void convert_f(Geom g, const void* src, int sdt, void* dst, int ddt) { convert_impl<float>(g, src, sdt, dst, ddt); }
extern "C" __global__ void convert_d(Geom g, const void* src, int sdt, void* dst, int ddt) { convert_impl<double>(g, src, sdt, dst, ddt); }

// Operand 0 = x, 1 = out. A bf16 output takes unary_op's LOW math, as the dense kernels do (same results).
template <typename A> __device__ void unary_impl(Geom g, int op, const void* x, int xdt, void* out, int odt) {
  GRID_LOOP(i, g.numel) {
    i64 off[2];
    offsets_of(g, i, 2, off);
    A v = load<A>(x, xdt, off[0]);
    store<A>(out, odt, off[1], odt == DT_BF16 ? unary_op<A, true>(op, v) : unary_op<A>(op, v));
  }
}

extern "C" __global__ void unary_f(Geom g, int op, const void* x, int xdt, void* out, int odt) { unary_impl<float>(g, op, x, xdt, out, odt); }
extern "C" __global__ void unary_d(Geom g, int op, const void* x, int xdt, void* out, int odt) { unary_impl<double>(g, op, x, xdt, out, odt); }

// Operand 0 = a, 1 = b, 2 = out.
template <typename A> __device__ void binary_impl(Geom g, int op, const void* a, int adt, const void* b, int bdt, void* out, int odt) {
  GRID_LOOP(i, g.numel) {
    i64 off[3];
    offsets_of(g, i, 3, off);
    A va = load<A>(a, adt, off[0]), vb = load<A>(b, bdt, off[1]);
    store<A>(out, odt, off[2], odt == DT_BF16 ? binary_op<A, true>(op, va, vb) : binary_op<A>(op, va, vb));
  }
}

extern "C" __global__ void binary_f(Geom g, int op, const void* a, int adt, const void* b, int bdt, void* out, int odt) {
  binary_impl<float>(g, op, a, adt, b, bdt, out, odt);
}
extern "C" __global__ void binary_d(Geom g, int op, const void* a, int adt, const void* b, int bdt, void* out, int odt) {
  binary_impl<double>(g, op, a, adt, b, bdt, out, odt);
}

// Operand 0 = a, 1 = out; the scalar is always passed as double and rounded to A.
template <typename A> __device__ void binary_scalar_impl(Geom g, int op, const void* a, int adt, double s, void* out, int odt) {
  A sv = (A)s;
  GRID_LOOP(i, g.numel) {
    i64 off[2];
    offsets_of(g, i, 2, off);
    A va = load<A>(a, adt, off[0]);
    store<A>(out, odt, off[1], odt == DT_BF16 ? binary_op<A, true>(op, va, sv) : binary_op<A>(op, va, sv));
  }
}

extern "C" __global__ void binary_scalar_f(Geom g, int op, const void* a, int adt, double s, void* out, int odt) {
  binary_scalar_impl<float>(g, op, a, adt, s, out, odt);
}
extern "C" __global__ void binary_scalar_d(Geom g, int op, const void* a, int adt, double s, void* out, int odt) {
  binary_scalar_impl<double>(g, op, a, adt, s, out, odt);
}

// Operand 0 = cond, 1 = a, 2 = b, 3 = out.
template <typename A> __device__ void where_impl(Geom g, const void* c, int cdt, const void* a, int adt, const void* b, int bdt, void* out, int odt) {
  GRID_LOOP(i, g.numel) {
    i64 off[4];
    offsets_of(g, i, 4, off);
    A v = load<A>(c, cdt, off[0]) != (A)0 ? load<A>(a, adt, off[1]) : load<A>(b, bdt, off[2]);
    store<A>(out, odt, off[3], v);
  }
}

extern "C" __global__ void where_f(Geom g, const void* c, int cdt, const void* a, int adt, const void* b, int bdt, void* out, int odt) {
  where_impl<float>(g, c, cdt, a, adt, b, bdt, out, odt);
}
extern "C" __global__ void where_d(Geom g, const void* c, int cdt, const void* a, int adt, const void* b, int bdt, void* out, int odt) {
  where_impl<double>(g, c, cdt, a, adt, b, bdt, out, odt);
}

// Philox4x32-10, bit-identical to io.colossal4j.backend.Philox: element i of out (contiguous from element
// offset outOff) uses counter (offset + i/4), lane i%4, under key seed.
__device__ __forceinline__ void philox(u64 seed, u64 ctr, unsigned* r) {
  unsigned c0 = (unsigned)ctr, c1 = (unsigned)(ctr >> 32), c2 = 0, c3 = 0;
  unsigned k0 = (unsigned)seed, k1 = (unsigned)(seed >> 32);
  for (int round = 0; round < 10; round++) {
    unsigned hi0 = __umulhi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
    unsigned hi1 = __umulhi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
    unsigned n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += 0x9E3779B9u; k1 += 0xBB67AE85u;
  }
  r[0] = c0; r[1] = c1; r[2] = c2; r[3] = c3;
}

extern "C" __global__ void uniform_kernel(void* out, int dt, i64 outOff, i64 n, u64 seed, u64 offset) {
  i64 blocks = (n + 3) / 4;
  GRID_LOOP(q, blocks) {
    unsigned r[4];
    philox(seed, offset + (u64)q, r);
    for (int lane = 0; lane < 4; lane++) {
      i64 i = q * 4 + lane;
      if (i < n) store<float>(out, dt, outOff + i, (float)(r[lane] >> 8) * 5.9604644775390625e-8f);
    }
  }
}
