// Convolution helpers (im2col, col2im) and pooling over contiguous NCHW tensors. Convolution itself is a
// cuBLASLt GEMM over the column buffer (CudaConv.java); these kernels only move data.
//
// Column buffer layout: col[g][k][n][p] with k = (cg*kH + i)*kW + j (the weight's own [Cg, kH, kW] order),
// n the image within the chunk and p = oh*Wo + ow. So one GEMM per group covers a whole chunk of images:
// out_g[Coutg, Nc*P] = w_g[Coutg, K] @ col_g[K, Nc*P].

// Geometry of one convolution chunk (passed by value, laid out by CudaConv.java: 16 ints then 1 long).
struct ConvGeom {
  int c, h, w;            // input channels and size
  int ho, wo;             // output size
  int kh, kw;             // filter size
  int sh, sw, pt, pl;     // stride, top/left padding
  int dh, dw;             // dilation
  int groups, nc, pad0;   // groups, images in this chunk
  i64 n0;                 // first image of the chunk
};

// col = im2col(x) for images n0 .. n0+nc-1; taps in the padding are zero. T is the element's storage type.
template <typename T> __device__ void im2col_impl(ConvGeom g, const T* x, T* col) {
  int cg = g.c / g.groups;
  i64 P = (i64)g.ho * g.wo, K = (i64)cg * g.kh * g.kw;
  i64 total = (i64)g.groups * K * g.nc * P;
  GRID_LOOP(e, total) {
    i64 p = e % P, rest = e / P;
    i64 n = rest % g.nc; rest /= g.nc;
    i64 k = rest % K;
    i64 grp = rest / K;
    int j = (int)(k % g.kw), i = (int)((k / g.kw) % g.kh), ci = (int)(k / ((i64)g.kw * g.kh));
    int oh = (int)(p / g.wo), ow = (int)(p % g.wo);
    int ih = oh * g.sh - g.pt + i * g.dh, iw = ow * g.sw - g.pl + j * g.dw;
    T v = (T)0;
    if (ih >= 0 && ih < g.h && iw >= 0 && iw < g.w)
      v = x[(((g.n0 + n) * g.c + grp * cg + ci) * g.h + ih) * (i64)g.w + iw];
    col[e] = v;
  }
}

extern "C" __global__ void im2col_2(ConvGeom g, const u16* x, u16* col) { im2col_impl<u16>(g, x, col); }
extern "C" __global__ void im2col_4(ConvGeom g, const float* x, float* col) { im2col_impl<float>(g, x, col); }
extern "C" __global__ void im2col_8(ConvGeom g, const double* x, double* col) { im2col_impl<double>(g, x, col); }

// gx (contiguous NCHW, images n0 .. n0+nc-1) = the sum over every tap that read each input element of the
// column gradient: a gather, so no atomics and a fixed summation order.
template <typename A> __device__ void col2im_impl(ConvGeom g, const void* col, int cdt, void* gx, int gdt) {
  int cg = g.c / g.groups;
  i64 P = (i64)g.ho * g.wo, K = (i64)cg * g.kh * g.kw;
  i64 total = (i64)g.nc * g.c * g.h * g.w;
  GRID_LOOP(e, total) {
    int iw = (int)(e % g.w);
    int ih = (int)((e / g.w) % g.h);
    int c = (int)((e / ((i64)g.w * g.h)) % g.c);
    i64 n = e / ((i64)g.w * g.h * g.c);
    int grp = c / cg, ci = c % cg;
    A acc = (A)0;
    for (int i = 0; i < g.kh; i++) {
      int th = ih + g.pt - i * g.dh;
      if (th < 0 || th % g.sh != 0) continue;
      int oh = th / g.sh;
      if (oh >= g.ho) continue;
      for (int j = 0; j < g.kw; j++) {
        int tw = iw + g.pl - j * g.dw;
        if (tw < 0 || tw % g.sw != 0) continue;
        int ow = tw / g.sw;
        if (ow >= g.wo) continue;
        i64 k = ((i64)ci * g.kh + i) * g.kw + j;
        acc += load<A>(col, cdt, ((grp * K + k) * g.nc + n) * P + (i64)oh * g.wo + ow);
      }
    }
    store<A>(gx, gdt, (g.n0 + n) * g.c * g.h * (i64)g.w + (e - n * (i64)g.c * g.h * g.w), acc);
  }
}

extern "C" __global__ void col2im_f(ConvGeom g, const void* col, int cdt, void* gx, int gdt) { col2im_impl<float>(g, col, cdt, gx, gdt); }
extern "C" __global__ void col2im_d(ConvGeom g, const void* col, int cdt, void* gx, int gdt) { col2im_impl<double>(g, col, cdt, gx, gdt); }

// ------------------------------------------------------------- pooling
// PoolGeom: planes = N*C, input h x w, output ho x wo, kernel, stride, padding, flags.
struct PoolGeom {
  i64 planes;
  int h, w, ho, wo;
  int kh, kw, sh, sw, ph, pw;
  int countIncludePad, pad0;
};

// The window of output (oh, ow): clipped input range [h0, h1) x [w0, w1) and the divisor, as the reference.
__device__ __forceinline__ void pool_window(const PoolGeom& g, int oh, int ow, int& h0, int& h1, int& w0, int& w1, int& div) {
  int hs = oh * g.sh - g.ph, he = min(hs + g.kh, g.h + g.ph);
  int ws = ow * g.sw - g.pw, we = min(ws + g.kw, g.w + g.pw);
  h0 = max(hs, 0); h1 = min(he, g.h); w0 = max(ws, 0); w1 = min(we, g.w);
  div = g.countIncludePad ? (he - hs) * (we - ws) : (h1 - h0) * (w1 - w0);
}

// Max over each window; ties keep the first index, a NaN always wins (the output is the window's last NaN).
template <typename A> __device__ void maxpool_impl(PoolGeom g, const void* x, int xdt, void* out, int odt, i64* idx) {
  i64 total = g.planes * g.ho * g.wo;
  GRID_LOOP(e, total) {
    int ow = (int)(e % g.wo), oh = (int)((e / g.wo) % g.ho);
    i64 plane = e / ((i64)g.wo * g.ho);
    int h0, h1, w0, w1, div;
    pool_window(g, oh, ow, h0, h1, w0, w1, div);
    A best = -m_inf<A>();
    i64 bi = (i64)h0 * g.w + w0;
    const i64 base = plane * g.h * (i64)g.w;
    for (int hh = h0; hh < h1; hh++)
      for (int ww = w0; ww < w1; ww++) {
        A v = load<A>(x, xdt, base + (i64)hh * g.w + ww);
        if (v > best || m_isnan(v)) { best = v; bi = (i64)hh * g.w + ww; }
      }
    store<A>(out, odt, e, best);
    idx[e] = bi;
  }
}

extern "C" __global__ void maxpool_f(PoolGeom g, const void* x, int xdt, void* out, int odt, i64* idx) { maxpool_impl<float>(g, x, xdt, out, odt, idx); }
extern "C" __global__ void maxpool_d(PoolGeom g, const void* x, int xdt, void* out, int odt, i64* idx) { maxpool_impl<double>(g, x, xdt, out, odt, idx); }

// acc (f32 or f64, zeroed, [planes, plane]) += gy at the saved indices. An index outside its plane is a
// fault (recorded, skipped), never a write outside the buffer.
template <typename A> __device__ void maxpool_bwd_impl(i64 n, i64 outPlane, i64 plane, const void* gy, int gdt, const i64* idx, A* acc, i64* fault) {
  GRID_LOOP(e, n) {
    i64 at = idx[e];
    if (at < 0 || at >= plane) {
      if (atomicCAS((unsigned long long*)fault, 0ull, 1ull) == 0ull) { fault[1] = at; fault[2] = e; fault[3] = plane; }
      continue;
    }
    atomicAdd(acc + (e / outPlane) * plane + at, load<A>(gy, gdt, e));
  }
}

extern "C" __global__ void maxpool_bwd_d(i64 n, i64 op, i64 pl, const void* gy, int gdt, const i64* idx, double* acc, i64* fault) {
  maxpool_bwd_impl<double>(n, op, pl, gy, gdt, idx, acc, fault);
}

template <typename A> __device__ void avgpool_impl(PoolGeom g, const void* x, int xdt, void* out, int odt) {
  i64 total = g.planes * g.ho * g.wo;
  GRID_LOOP(e, total) {
    int ow = (int)(e % g.wo), oh = (int)((e / g.wo) % g.ho);
    i64 plane = e / ((i64)g.wo * g.ho);
    int h0, h1, w0, w1, div;
    pool_window(g, oh, ow, h0, h1, w0, w1, div);
    A sum = (A)0;
    const i64 base = plane * g.h * (i64)g.w;
    for (int hh = h0; hh < h1; hh++)
      for (int ww = w0; ww < w1; ww++) sum += load<A>(x, xdt, base + (i64)hh * g.w + ww);
    store<A>(out, odt, e, sum / (A)div);
  }
}

extern "C" __global__ void avgpool_f(PoolGeom g, const void* x, int xdt, void* out, int odt) { avgpool_impl<float>(g, x, xdt, out, odt); }
extern "C" __global__ void avgpool_d(PoolGeom g, const void* x, int xdt, void* out, int odt) { avgpool_impl<double>(g, x, xdt, out, odt); }

// gx[h, w] = sum over the windows containing (h, w) of gy / divisor: a gather over the outputs whose window
// starts within kernel-1 cells before (h, w).
template <typename A> __device__ void avgpool_bwd_impl(PoolGeom g, const void* gy, int gdt, void* gx, int xdt) {
  i64 total = g.planes * g.h * g.w;
  GRID_LOOP(e, total) {
    int iw = (int)(e % g.w), ih = (int)((e / g.w) % g.h);
    i64 plane = e / ((i64)g.w * g.h);
    int ohLo = max(0, (ih + g.ph - g.kh + g.sh) / g.sh), ohHi = min(g.ho - 1, (ih + g.ph) / g.sh);
    int owLo = max(0, (iw + g.pw - g.kw + g.sw) / g.sw), owHi = min(g.wo - 1, (iw + g.pw) / g.sw);
    A acc = (A)0;
    for (int oh = ohLo; oh <= ohHi; oh++)
      for (int ow = owLo; ow <= owHi; ow++) {
        int h0, h1, w0, w1, div;
        pool_window(g, oh, ow, h0, h1, w0, w1, div);
        if (ih < h0 || ih >= h1 || iw < w0 || iw >= w1) continue;
        acc += load<A>(gy, gdt, (plane * g.ho + oh) * (i64)g.wo + ow) / (A)div;
      }
    store<A>(gx, xdt, e, acc);
  }
}

extern "C" __global__ void avgpool_bwd_f(PoolGeom g, const void* gy, int gdt, void* gx, int xdt) { avgpool_bwd_impl<float>(g, gy, gdt, gx, xdt); }
extern "C" __global__ void avgpool_bwd_d(PoolGeom g, const void* gy, int gdt, void* gx, int xdt) { avgpool_bwd_impl<double>(g, gy, gdt, gx, xdt); }
