// Fused Adam/AdamW over up to ADAM_MAX parameters per launch (blockIdx.y picks the parameter); the rule is
// io.colossal4j.backend.AdamUpdate's. Each element is read once and p, m, v written once.
#define ADAM_MAX 16

// Laid out by CudaOptim.java: numel, then the p, g, m, v pointers, then their dtypes, ADAM_MAX of each.
struct AdamBatch {
  i64 numel[ADAM_MAX];
  void* p[ADAM_MAX];
  const void* g[ADAM_MAX];
  void* m[ADAM_MAX];
  void* v[ADAM_MAX];
  int pdt[ADAM_MAX], gdt[ADAM_MAX], mdt[ADAM_MAX], vdt[ADAM_MAX];
};

// keep = 1 - lr*wd (decoupled), 1 - beta (omb1, omb2) and the bias corrections' inverses are computed in
// double on the host: 1 - beta2 in float would cancel (1 - 0.999f is 1.3e-5 away from 0.001, relatively).
template <typename A> __device__ __forceinline__ void adam_one(A& p, A g, A& m, A& v, A lr, A beta1, A beta2, A omb1, A omb2, A eps, A wd,
                                                int decoupled, A keep, A invBc1, A invBc2) {
  if (decoupled) p *= keep; else g += wd * p;
  m = beta1 * m + omb1 * g;
  v = beta2 * v + omb2 * g * g;
  p -= lr * (m * invBc1) / (m_sqrt(v * invBc2) + eps);
}

// The dense path of one parameter: p, g, m, v of one dtype T (bf16 or f32), 16-byte aligned: 8 elements per
// thread step through ld8/st8 (elementwise_vec.cu), the same float arithmetic as the scalar path.
template <typename T> __device__ void adam_dense(i64 n, T* pp, const T* gp, T* mp, T* vp, float lr, float beta1, float beta2, float omb1,
                                                 float omb2, float eps, float wd, int decoupled, float keep, float invBc1, float invBc2) {
  i64 nv = n / 8;
  for (i64 q = (i64)blockIdx.x * blockDim.x + threadIdx.x; q < nv; q += (i64)blockDim.x * gridDim.x) {
    float p[8], g[8], m[8], v[8];
    ld8(pp + q * 8, p); ld8(gp + q * 8, g); ld8(mp + q * 8, m); ld8(vp + q * 8, v);
#pragma unroll
    for (int j = 0; j < 8; j++) adam_one<float>(p[j], g[j], m[j], v[j], lr, beta1, beta2, omb1, omb2, eps, wd, decoupled, keep, invBc1, invBc2);
    st8(mp + q * 8, m); st8(vp + q * 8, v); st8(pp + q * 8, p);
  }
}

template <typename A> __device__ void adam_impl(const AdamBatch& b, A lr, A beta1, A beta2, A omb1, A omb2, A eps, A wd, int decoupled,
                                                A keep, A invBc1, A invBc2) {
  int j = blockIdx.y;
  i64 n = b.numel[j], from = 0;
  int t = b.pdt[j];
  bool oneType = b.gdt[j] == t && b.mdt[j] == t && b.vdt[j] == t && (t == DT_BF16 || t == DT_F32);
  bool aligned = ((((u64)b.p[j]) | ((u64)b.g[j]) | ((u64)b.m[j]) | ((u64)b.v[j])) & 15) == 0;
  if (sizeof(A) == 4 && oneType && aligned) {
    if (t == DT_BF16)
      adam_dense<u16>(n, (u16*)b.p[j], (const u16*)b.g[j], (u16*)b.m[j], (u16*)b.v[j], (float)lr, (float)beta1, (float)beta2, (float)omb1,
                      (float)omb2, (float)eps, (float)wd, decoupled, (float)keep, (float)invBc1, (float)invBc2);
    else
      adam_dense<float>(n, (float*)b.p[j], (const float*)b.g[j], (float*)b.m[j], (float*)b.v[j], (float)lr, (float)beta1, (float)beta2,
                        (float)omb1, (float)omb2, (float)eps, (float)wd, decoupled, (float)keep, (float)invBc1, (float)invBc2);
    from = n / 8 * 8;   // the tail below
  }
  for (i64 i = from + (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)blockDim.x * gridDim.x) {
    A p = load<A>(b.p[j], b.pdt[j], i), m = load<A>(b.m[j], b.mdt[j], i), v = load<A>(b.v[j], b.vdt[j], i);
    adam_one<A>(p, load<A>(b.g[j], b.gdt[j], i), m, v, lr, beta1, beta2, omb1, omb2, eps, wd, decoupled, keep, invBc1, invBc2);
    store<A>(b.m[j], b.mdt[j], i, m);
    store<A>(b.v[j], b.vdt[j], i, v);
    store<A>(b.p[j], b.pdt[j], i, p);
  }
}

extern "C" __global__ void adam_step_f(AdamBatch b, double lr, double beta1, double beta2, double omb1, double omb2, double eps,
                                       double wd, int decoupled, double keep, double invBc1, double invBc2) {
  adam_impl<float>(b, (float)lr, (float)beta1, (float)beta2, (float)omb1, (float)omb2, (float)eps, (float)wd, decoupled, (float)keep,
                   (float)invBc1, (float)invBc2);
}
extern "C" __global__ void adam_step_d(AdamBatch b, double lr, double beta1, double beta2, double omb1, double omb2, double eps,
                                       double wd, int decoupled, double keep, double invBc1, double invBc2) {
  adam_impl<double>(b, lr, beta1, beta2, omb1, omb2, eps, wd, decoupled, keep, invBc1, invBc2);
}

// Sums of squares of up to SUMSQ_MAX tensors per launch (blockIdx.y picks the tensor): the gradient norm of a
// step in a few launches instead of two per parameter. Squares and each thread's running sum in f32 (a thread
// sees numel / (blocks·threads) elements), the block sums in f64 into partials[tensor][block]; sumsq_finish
// adds a tensor's partials into its f64 slot.
#define SUMSQ_MAX 16

// Laid out by CudaOptim.java: numel, then the data pointers, then the dtypes, SUMSQ_MAX of each.
struct SumsqBatch {
  i64 numel[SUMSQ_MAX];
  const void* p[SUMSQ_MAX];
  int dt[SUMSQ_MAX];
};

extern "C" __global__ void sumsq_multi(SumsqBatch b, double* partials) {
  __shared__ double warps[32];
  const int j = blockIdx.y, t = b.dt[j];
  const i64 n = b.numel[j], tid = (i64)blockIdx.x * blockDim.x + threadIdx.x, stride = (i64)blockDim.x * gridDim.x;
  float acc = 0.f;
  i64 from = 0;
  if ((((u64)b.p[j]) & 15) == 0 && (t == DT_BF16 || t == DT_F32)) {
    const i64 nv = n / 8;
    for (i64 q = tid; q < nv; q += stride) {
      float x[8];
      if (t == DT_BF16) ld8((const u16*)b.p[j] + q * 8, x); else ld8((const float*)b.p[j] + q * 8, x);
#pragma unroll
      for (int e = 0; e < 8; e++) acc = fmaf(x[e], x[e], acc);
    }
    from = nv * 8;
  }
  for (i64 i = from + tid; i < n; i += stride) {
    float x = load<float>(b.p[j], t, i);
    acc = fmaf(x, x, acc);
  }
  double d = acc;
  for (int m = 16; m > 0; m >>= 1) d += __shfl_xor_sync(0xffffffffu, d, m);
  if ((threadIdx.x & 31) == 0) warps[threadIdx.x >> 5] = d;
  __syncthreads();
  if (threadIdx.x < 32) {
    d = threadIdx.x < (blockDim.x >> 5) ? warps[threadIdx.x] : 0.0;
    for (int m = 16; m > 0; m >>= 1) d += __shfl_xor_sync(0xffffffffu, d, m);
    if (threadIdx.x == 0) partials[(i64)j * gridDim.x + blockIdx.x] = d;
  }
}

// slots[j] = the sum of partials[j][0 .. blocks-1], one warp per tensor, in a fixed order (deterministic).
extern "C" __global__ void sumsq_finish(const double* partials, int blocks, double* slots, int count) {
  const int j = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
  if (j >= count) return;
  double d = 0.0;
  for (int i = lane; i < blocks; i += 32) d += partials[(i64)j * blocks + i];
  for (int m = 16; m > 0; m >>= 1) d += __shfl_xor_sync(0xffffffffu, d, m);
  if (lane == 0) slots[j] = d;
}
