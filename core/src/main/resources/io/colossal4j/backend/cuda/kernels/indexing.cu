// index_select, index_add, gather and scatter_add as one strided walk (CudaIndexing.java builds the walk).
//
// The walk covers `g` (not coalesced, so dim `dim` keeps its place): operand 0 is the indexed tensor with
// its stride along `dim` set to 0 (the index supplies that coordinate, times `step`), operand 1 the other
// tensor, operand 2 the index tensor (modes 2 and 3). Modes: 0 index_select (out = x[idx[c_dim]]),
// 1 index_add (out[idx[c_dim]] += src), 2 gather (out = x[idx]), 3 scatter_add (out[idx] += src).
// An index outside [0, limit) is recorded in fault[0..3] (flag, value, walk position, limit) and skipped,
// so a bad index never touches memory outside the tensor; the host reports it at the next synchronisation.

// out[i] += v in out's dtype; 16-bit types through a compare-and-swap on the aligned 32-bit word.
__device__ void atomic_add_any(void* base, int dt, i64 i, double v) {
  switch (dt) {
    case DT_F32: atomicAdd((float*)base + i, (float)v); break;
    case DT_F64: atomicAdd((double*)base + i, v); break;
    case DT_I32: atomicAdd((int*)base + i, to_i32(v)); break;
    case DT_I64: atomicAdd((unsigned long long*)base + i, (unsigned long long)to_i64(v)); break;
    case DT_BF16:
    case DT_F16: {
      unsigned* word = (unsigned*)((unsigned long long)((u16*)base + i) & ~3ull);
      int shift = (((unsigned long long)((u16*)base + i)) & 2ull) ? 16 : 0;
      unsigned old = *word, assumed;
      do {
        assumed = old;
        u16 cur = (u16)((assumed >> shift) & 0xffffu);
        float sum = (dt == DT_BF16 ? bf16_to_f(cur) : f16_to_f(cur)) + (float)v;
        u16 nv = dt == DT_BF16 ? f_to_bf16(sum) : f_to_f16(sum);
        unsigned repl = (assumed & ~(0xffffu << shift)) | ((unsigned)nv << shift);
        old = atomicCAS(word, assumed, repl);
      } while (old != assumed);
      break;
    }
    default:
      if (v != 0.0) ((unsigned char*)base)[i] = 1;  // bool: a logical or
  }
}

__device__ __forceinline__ void copy_elem(const void* src, i64 si, void* dst, i64 di, int es) {
  switch (es) {
    case 1: ((unsigned char*)dst)[di] = ((const unsigned char*)src)[si]; break;
    case 2: ((u16*)dst)[di] = ((const u16*)src)[si]; break;
    case 4: ((unsigned*)dst)[di] = ((const unsigned*)src)[si]; break;
    default: ((u64*)dst)[di] = ((const u64*)src)[si]; break;
  }
}

extern "C" __global__ void index_walk(Geom g, int mode, int dim, i64 step, i64 limit,
                                      const void* idx, int idt, i64 istride, i64 ioff,
                                      void* t0, int dt0, void* t1, int dt1, int es, i64* fault) {
  GRID_LOOP(e, g.numel) {
    i64 off[3] = {g.offsets[0], g.offsets[1], g.offsets[2]};
    i64 rem = e, cdim = 0;
    for (int d = g.rank - 1; d >= 0; d--) {
      i64 c = rem % g.shape[d];
      rem /= g.shape[d];
      if (d == dim) cdim = c;
      for (int k = 0; k < 3; k++) off[k] += c * g.strides[k][d];
    }
    i64 ii = mode < 2 ? ioff + cdim * istride : off[2];
    i64 at = idt == DT_I32 ? (i64)((const int*)idx)[ii] : ((const i64*)idx)[ii];
    if (at < 0 || at >= limit) {
      if (atomicCAS((unsigned long long*)fault, 0ull, 1ull) == 0ull) { fault[1] = at; fault[2] = mode < 2 ? cdim : e; fault[3] = limit; }
      continue;
    }
    i64 target = off[0] + at * step;
    if (mode == 0 || mode == 2) copy_elem(t0, target, t1, off[1], es);
    else atomic_add_any(t0, dt0, target, load<double>(t1, dt1, off[1]));
  }
}
