package io.colossal4j.backend.cpu.simd;

import static io.colossal4j.backend.cpu.CpuBackend.segment;

import io.colossal4j.backend.cpu.CpuParallel;
import io.colossal4j.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Training-mode batch norm and its backward for contiguous f32 x [N, C, S...] ({@code Kernels.batchNormTrain}
 * states the math), channels spread over the pool. Per channel: the statistics in two passes over its N runs of
 * S = Π trailing dims values (mean, then the centred sum of squares, so a large mean does not cancel the
 * variance away), then one pass writing y = x·scale + shift; the backward likewise sums gy and gy·(x − mean),
 * then writes gx = k·gy + a·x + c in one pass. Vector partial sums of at most {@link #FOLD} values are folded
 * (lanes summed left to right, the order of {@link VMath#sumLanes}, so identical steps agree bit for bit) into double
 * accumulators, which bounds the rounding of a channel's sum by the fold length, not by N·S. A run's last
 * S mod L values are handled one by one: masked loads near a segment's end fall back to per-lane bounds checks.
 * Channels are handed out one at a time from a shared counter ({@link CpuParallel#forEachChunk}), so a
 * descheduled worker holds nothing up. Thread-safety: each task writes only its own channel.
 */
final class BatchNormKernel {
  private BatchNormKernel() {}

  private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
  private static final int L = S.length();
  private static final int FOLD = 256;
  private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;
  private static final ByteOrder NATIVE = ByteOrder.nativeOrder();

  /** x, y contiguous f32 [N, C, ...]; w, b f32 [C] or null; mean, var f32 [C]. */
  static void forward(CpuParallel par, Tensor x, Tensor w, Tensor b, double eps, Tensor y, Tensor mean, Tensor var) {
    int n = x.size(0), c = x.size(1);
    long s = x.numel() / ((long) n * c), m = (long) n * s;
    MemorySegment sx = segment(x), sy = segment(y);
    par.forEachChunk(c, chunk -> {
      {
        int ch = (int) chunk;
        double sum = 0;
        for (int i = 0; i < n; i++) sum += sumPlain(sx, x.offset() + ((long) i * c + ch) * s, s);
        double mu = sum / m, sq = 0;
        for (int i = 0; i < n; i++) sq += sumSquares(sx, x.offset() + ((long) i * c + ch) * s, s, (float) mu);
        double v = sq / m;
        segment(mean).setAtIndex(F, mean.offset() + ch * mean.stride(0), (float) mu);
        segment(var).setAtIndex(F, var.offset() + ch * var.stride(0), (float) v);
        double scale = at(w, ch, 1) / Math.sqrt(v + eps), shift = at(b, ch, 0) - mu * scale;
        for (int i = 0; i < n; i++) {
          long o = ((long) i * c + ch) * s;
          axpb(sx, x.offset() + o, null, 0, 0f, sy, y.offset() + o, s, (float) scale, (float) shift);
        }
      }
    });
  }

  /** gy, x, gx contiguous f32 [N, C, ...]; w f32 [C] or null; mean, var f32 [C]; gw, gb f32 [C] or null. */
  static void backward(CpuParallel par, Tensor gy, Tensor x, Tensor w, Tensor mean, Tensor var, double eps, Tensor gx, Tensor gw, Tensor gb) {
    int n = x.size(0), c = x.size(1);
    long s = x.numel() / ((long) n * c), m = (long) n * s;
    MemorySegment sg = segment(gy), sx = segment(x), so = segment(gx);
    par.forEachChunk(c, chunk -> {
      {
        int ch = (int) chunk;
        float mu = segment(mean).getAtIndex(F, mean.offset() + ch * mean.stride(0));
        double r = 1 / Math.sqrt(segment(var).getAtIndex(F, var.offset() + ch * var.stride(0)) + eps);
        double sumG = 0, sumGC = 0;   // Σ gy and Σ gy·(x − mean)
        for (int i = 0; i < n; i++) {
          long o = ((long) i * c + ch) * s;
          sumG += sumPlain(sg, gy.offset() + o, s);
          sumGC += dot(sg, gy.offset() + o, sx, x.offset() + o, s, mu);
        }
        double sumGX = sumGC * r, k = at(w, ch, 1) * r;
        // gx = k·(gy − sumG/m − (x − mean)·r·sumGX/m) = k·gy + a·x + (−k·sumG/m − a·mean)
        double a = -k * r * sumGX / m, shift = -k * sumG / m - a * mu;
        for (int i = 0; i < n; i++) {
          long o = ((long) i * c + ch) * s;
          axpb(sx, x.offset() + o, sg, gy.offset() + o, (float) k, so, gx.offset() + o, s, (float) a, (float) shift);
        }
        if (gw != null) segment(gw).setAtIndex(F, gw.offset() + ch * gw.stride(0), (float) sumGX);
        if (gb != null) segment(gb).setAtIndex(F, gb.offset() + ch * gb.stride(0), (float) sumG);
      }
    });
  }

  private static double at(Tensor t, int ch, double absent) {
    return t == null ? absent : segment(t).getAtIndex(F, t.offset() + ch * t.stride(0));
  }

  /** Σ x[i] over the run. */
  private static double sumPlain(MemorySegment seg, long off, long len) {
    double total = 0;
    long full = len - len % L;
    for (long f = 0; f < full; f += FOLD) {
      long end = Math.min(full, f + FOLD);
      FloatVector acc = FloatVector.zero(S);
      for (long i = f; i < end; i += L) acc = acc.add(load(seg, off + i));
      float lanes = 0;
      for (int l = 0; l < L; l++) lanes += acc.lane(l);   // VMath.sumLanes's order, without its array per call
      total += lanes;
    }
    for (long i = full; i < len; i++) total += seg.getAtIndex(F, off + i);
    return total;
  }

  /** Σ (x[i] − centre)² over the run. */
  private static double sumSquares(MemorySegment seg, long off, long len, float centre) {
    double total = 0;
    long full = len - len % L;
    for (long f = 0; f < full; f += FOLD) {
      long end = Math.min(full, f + FOLD);
      FloatVector acc = FloatVector.zero(S);
      for (long i = f; i < end; i += L) {
        FloatVector d = load(seg, off + i).sub(centre);
        acc = d.fma(d, acc);
      }
      float lanes = 0;
      for (int l = 0; l < L; l++) lanes += acc.lane(l);   // VMath.sumLanes's order, without its array per call
      total += lanes;
    }
    for (long i = full; i < len; i++) { float d = seg.getAtIndex(F, off + i) - centre; total += d * d; }
    return total;
  }

  /** Σ g[i]·(x[i] − centre) over the run. */
  private static double dot(MemorySegment sg, long go, MemorySegment sx, long xo, long len, float centre) {
    double total = 0;
    long full = len - len % L;
    for (long f = 0; f < full; f += FOLD) {
      long end = Math.min(full, f + FOLD);
      FloatVector acc = FloatVector.zero(S);
      for (long i = f; i < end; i += L) acc = load(sx, xo + i).sub(centre).fma(load(sg, go + i), acc);
      float lanes = 0;
      for (int l = 0; l < L; l++) lanes += acc.lane(l);   // VMath.sumLanes's order, without its array per call
      total += lanes;
    }
    for (long i = full; i < len; i++) total += sg.getAtIndex(F, go + i) * (sx.getAtIndex(F, xo + i) - centre);
    return total;
  }

  /** out[i] = a·x[i] + b (+ k·g[i] when g is non-null) over the run. */
  private static void axpb(MemorySegment sx, long xo, MemorySegment sg, long go, float k, MemorySegment so, long oo, long len, float a, float b) {
    long full = len - len % L;
    FloatVector kv = FloatVector.broadcast(S, k);
    for (long i = 0; i < full; i += L) {
      FloatVector v = load(sx, xo + i).fma(a, b);
      if (sg != null) v = load(sg, go + i).fma(kv, v);
      v.intoMemorySegment(so, (oo + i) * 4, NATIVE);
    }
    for (long i = full; i < len; i++) {
      float v = Math.fma(sx.getAtIndex(F, xo + i), a, b);
      so.setAtIndex(F, oo + i, sg == null ? v : Math.fma(sg.getAtIndex(F, go + i), k, v));
    }
  }

  private static FloatVector load(MemorySegment seg, long off) {
    return FloatVector.fromMemorySegment(S, seg, off * 4, NATIVE);
  }
}
