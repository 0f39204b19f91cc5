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
template <typename A> __device__ void adam_impl(const AdamBatch& b, A lr, A beta1, A beta2, A omb1, A omb2, A eps, A wd, int decoupled,
                                                A keep, A invBc1, A invBc2) {
  int j = blockIdx.y;
  i64 n = b.numel[j];
  for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)blockDim.x * gridDim.x) {
    A p = load<A>(b.p[j], b.pdt[j], i), g = load<A>(b.g[j], b.gdt[j], i);
    if (decoupled) p *= keep; else g += wd * p;
    A m = beta1 * load<A>(b.m[j], b.mdt[j], i) + omb1 * g;
    A v = beta2 * load<A>(b.v[j], b.vdt[j], i) + omb2 * g * g;
    p -= lr * (m * invBc1) / (m_sqrt(v * invBc2) + eps);
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
