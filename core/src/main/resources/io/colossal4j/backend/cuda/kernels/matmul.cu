// Generic strided, batched matmul for what cuBLASLt does not take (integer and f64 tensors, strides no
// BLAS layout can express): 16x16 shared-memory tiles, accumulation in A. Batch offsets come from g
// (operands 0 = a, 1 = b, 2 = out over the batch dims); grid (ceil(N/16), ceil(M/16), min(batch, 65535)).
template <typename A> __device__ void matmul_impl(Geom g, int M, int N, int K, i64 am, i64 ak, i64 bk, i64 bn, i64 om, i64 on,
                                                 int accumulate, const void* a, int adt, const void* b, int bdt, void* out, int odt) {
  __shared__ A ta[16][17];
  __shared__ A tb[16][17];
  int tx = threadIdx.x, ty = threadIdx.y;
  int row = blockIdx.y * 16 + ty, col = blockIdx.x * 16 + tx;
  for (i64 z = blockIdx.z; z < g.numel; z += gridDim.z) {
    i64 off[3];
    offsets_of(g, z, 3, off);
    A acc = (A)0;
    for (int k0 = 0; k0 < K; k0 += 16) {
      int ka = k0 + tx, kb = k0 + ty;
      ta[ty][tx] = (row < M && ka < K) ? load<A>(a, adt, off[0] + row * am + ka * ak) : (A)0;
      tb[ty][tx] = (kb < K && col < N) ? load<A>(b, bdt, off[1] + kb * bk + col * bn) : (A)0;
      __syncthreads();
#pragma unroll
      for (int k = 0; k < 16; k++) acc += ta[ty][k] * tb[k][tx];
      __syncthreads();
    }
    if (row < M && col < N) {
      i64 o = off[2] + row * om + col * on;
      store<A>(out, odt, o, accumulate ? load<A>(out, odt, o) + acc : acc);
    }
  }
}

extern "C" __global__ void matmul_f(Geom g, int M, int N, int K, i64 am, i64 ak, i64 bk, i64 bn, i64 om, i64 on, int accumulate,
                                    const void* a, int adt, const void* b, int bdt, void* out, int odt) {
  matmul_impl<float>(g, M, N, K, am, ak, bk, bn, om, on, accumulate, a, adt, b, bdt, out, odt);
}
extern "C" __global__ void matmul_d(Geom g, int M, int N, int K, i64 am, i64 ak, i64 bk, i64 bn, i64 om, i64 on, int accumulate,
                                    const void* a, int adt, const void* b, int bdt, void* out, int odt) {
  matmul_impl<double>(g, M, N, K, am, ak, bk, bn, om, on, accumulate, a, adt, b, bdt, out, odt);
}
