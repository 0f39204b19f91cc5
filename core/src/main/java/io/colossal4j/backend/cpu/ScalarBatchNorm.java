package io.colossal4j.backend.cpu;

import static io.colossal4j.backend.cpu.CpuBackend.segment;
import static io.colossal4j.backend.cpu.ScalarKernels.get;
import static io.colossal4j.backend.cpu.ScalarKernels.set;

import io.colossal4j.tensor.Tensor;
import java.lang.foreign.MemorySegment;

/**
 * The reference training-mode batch norm and its backward ({@code Kernels.batchNormTrain} states the math):
 * contiguous x [N, C, S...] seen as [N, C, S], double arithmetic, two passes for the statistics, one thread.
 */
final class ScalarBatchNorm {
  private ScalarBatchNorm() {}

  /** x, y contiguous [N, C, ...]; w, b [C] or null; mean, var [C]. */
  static void forward(Tensor x, Tensor w, Tensor b, double eps, Tensor y, Tensor mean, Tensor var) {
    int n = x.size(0), c = x.size(1);
    long s = x.numel() / ((long) n * c), m = (long) n * s;
    MemorySegment sx = segment(x), sy = segment(y);
    for (int ch = 0; ch < c; ch++) {
      double mu = 0;
      for (int i = 0; i < n; i++) for (long j = 0; j < s; j++) mu += get(sx, x, x.offset() + at(i, ch, j, c, s));
      mu /= m;
      double v = 0;
      for (int i = 0; i < n; i++) for (long j = 0; j < s; j++) { double d = get(sx, x, x.offset() + at(i, ch, j, c, s)) - mu; v += d * d; }
      v /= m;
      set(segment(mean), mean, mean.offset() + ch * mean.stride(0), mu);
      set(segment(var), var, var.offset() + ch * var.stride(0), v);
      double scale = affine(w, ch, 1) / Math.sqrt(v + eps), shift = affine(b, ch, 0) - mu * scale;
      for (int i = 0; i < n; i++)
        for (long j = 0; j < s; j++) {
          long o = at(i, ch, j, c, s);
          set(sy, y, y.offset() + o, get(sx, x, x.offset() + o) * scale + shift);
        }
    }
  }

  /** gy, x, gx contiguous [N, C, ...]; w [C] or null; mean, var [C]; gw, gb [C] or null. */
  static void backward(Tensor gy, Tensor x, Tensor w, Tensor mean, Tensor var, double eps, Tensor gx, Tensor gw, Tensor gb) {
    int n = x.size(0), c = x.size(1);
    long s = x.numel() / ((long) n * c), m = (long) n * s;
    MemorySegment sg = segment(gy), sx = segment(x), so = segment(gx);
    for (int ch = 0; ch < c; ch++) {
      double mu = get(segment(mean), mean, mean.offset() + ch * mean.stride(0));
      double r = 1 / Math.sqrt(get(segment(var), var, var.offset() + ch * var.stride(0)) + eps);
      double sumG = 0, sumGX = 0;
      for (int i = 0; i < n; i++)
        for (long j = 0; j < s; j++) {
          long o = at(i, ch, j, c, s);
          double g = get(sg, gy, gy.offset() + o);
          sumG += g;
          sumGX += g * (get(sx, x, x.offset() + o) - mu) * r;
        }
      double k = affine(w, ch, 1) * r;
      for (int i = 0; i < n; i++)
        for (long j = 0; j < s; j++) {
          long o = at(i, ch, j, c, s);
          double xhat = (get(sx, x, x.offset() + o) - mu) * r;
          set(so, gx, gx.offset() + o, k * (get(sg, gy, gy.offset() + o) - sumG / m - xhat * sumGX / m));
        }
      if (gw != null) set(segment(gw), gw, gw.offset() + ch * gw.stride(0), sumGX);
      if (gb != null) set(segment(gb), gb, gb.offset() + ch * gb.stride(0), sumG);
    }
  }

  private static long at(int i, int ch, long j, int c, long s) { return ((long) i * c + ch) * s + j; }

  private static double affine(Tensor t, int ch, double absent) {
    return t == null ? absent : get(segment(t), t, t.offset() + ch * t.stride(0));
  }
}
