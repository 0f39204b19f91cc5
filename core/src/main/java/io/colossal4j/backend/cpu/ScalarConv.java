package io.colossal4j.backend.cpu;

import static io.colossal4j.backend.cpu.CpuBackend.segment;

import io.colossal4j.backend.Conv2dSpec;
import io.colossal4j.backend.Pool2dSpec;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Elements;
import io.colossal4j.tensor.Tensor;
import java.lang.foreign.MemorySegment;

/**
 * Reference loops for convolution and pooling over NCHW tensors of any strides and any floating dtype.
 *
 * <p>Every kernel is the direct loop over output positions and window taps, in double. The backward kernels
 * run exactly the forward loop and scatter into a double buffer instead of gathering, so forward and
 * backward share one index computation and cannot disagree about which input a tap reads. Windows follow
 * PyTorch: input row of output row {@code oh} and tap {@code kh} is {@code oh*stride - padTop + kh*dilation}.
 */
final class ScalarConv {
  private ScalarConv() {}

  /** A 4-D tensor's memory and strides, for readable element addressing. */
  private record Nchw(Tensor t, MemorySegment seg, long s0, long s1, long s2, long s3) {
    static Nchw of(Tensor t) { return new Nchw(t, segment(t), t.stride(0), t.stride(1), t.stride(2), t.stride(3)); }

    long at(int n, int c, int h, int w) { return t.offset() + n * s0 + c * s1 + h * s2 + w * s3; }

    double get(int n, int c, int h, int w) { return ScalarKernels.get(seg, t, at(n, c, h, w)); }

    void set(int n, int c, int h, int w, double v) { ScalarKernels.set(seg, t, at(n, c, h, w), v); }

    /** Writes a row-major [N, C, H, W] double buffer into the tensor. */
    void store(double[] acc) {
      int nn = t.size(0), cc = t.size(1), hh = t.size(2), ww = t.size(3);
      int i = 0;
      for (int n = 0; n < nn; n++)
        for (int c = 0; c < cc; c++)
          for (int h = 0; h < hh; h++)
            for (int w = 0; w < ww; w++) set(n, c, h, w, acc[i++]);
    }
  }

  /** Visits every (output element, input element, weight element) triple of a convolution. */
  @FunctionalInterface private interface ConvTap {
    void at(int n, int co, int oh, int ow, int ci, int ih, int iw, int kh, int kw);
  }

  /**
   * The one convolution loop: for each output position and each in-bounds tap, calls {@code tap}. Taps that
   * fall in the zero padding are skipped (they contribute nothing, forward or backward).
   */
  private static void forEachTap(int[] xDims, int[] wDims, int outH, int outW, Conv2dSpec s, ConvTap tap) {
    int batch = xDims[0], inH = xDims[2], inW = xDims[3];
    int cout = wDims[0], cinPerGroup = wDims[1], kH = wDims[2], kW = wDims[3];
    int coutPerGroup = cout / s.groups();
    for (int n = 0; n < batch; n++)
      for (int co = 0; co < cout; co++) {
        int ciBase = (co / coutPerGroup) * cinPerGroup;
        for (int oh = 0; oh < outH; oh++)
          for (int ow = 0; ow < outW; ow++)
            for (int cg = 0; cg < cinPerGroup; cg++)
              for (int kh = 0; kh < kH; kh++) {
                int ih = oh * s.strideH() - s.padTop() + kh * s.dilationH();
                if (ih < 0 || ih >= inH) continue;
                for (int kw = 0; kw < kW; kw++) {
                  int iw = ow * s.strideW() - s.padLeft() + kw * s.dilationW();
                  if (iw < 0 || iw >= inW) continue;
                  tap.at(n, co, oh, ow, ciBase + cg, ih, iw, kh, kw);
                }
              }
      }
  }

  static void conv2d(Tensor x, Tensor w, Conv2dSpec spec, Tensor out) {
    Nchw xa = Nchw.of(x), wa = Nchw.of(w), oa = Nchw.of(out);
    int cout = out.size(1), outH = out.size(2), outW = out.size(3);
    double[] acc = new double[Math.toIntExact(out.numel())];
    forEachTap(x.shape().toArray(), w.shape().toArray(), outH, outW, spec, (n, co, oh, ow, ci, ih, iw, kh, kw) ->
        acc[((n * cout + co) * outH + oh) * outW + ow] += xa.get(n, ci, ih, iw) * wa.get(co, ci % w.size(1), kh, kw));
    oa.store(acc);
  }

  static void conv2dBackwardInput(Tensor gy, Tensor w, Conv2dSpec spec, Tensor gx) {
    Nchw ga = Nchw.of(gy), wa = Nchw.of(w), xa = Nchw.of(gx);
    int cin = gx.size(1), inH = gx.size(2), inW = gx.size(3);
    double[] acc = new double[Math.toIntExact(gx.numel())];
    forEachTap(gx.shape().toArray(), w.shape().toArray(), gy.size(2), gy.size(3), spec, (n, co, oh, ow, ci, ih, iw, kh, kw) ->
        acc[((n * cin + ci) * inH + ih) * inW + iw] += ga.get(n, co, oh, ow) * wa.get(co, ci % w.size(1), kh, kw));
    xa.store(acc);
  }

  static void conv2dBackwardWeight(Tensor x, Tensor gy, Conv2dSpec spec, Tensor gw) {
    Nchw xa = Nchw.of(x), ga = Nchw.of(gy), wa = Nchw.of(gw);
    int cinPerGroup = gw.size(1), kH = gw.size(2), kW = gw.size(3);
    double[] acc = new double[Math.toIntExact(gw.numel())];
    forEachTap(x.shape().toArray(), gw.shape().toArray(), gy.size(2), gy.size(3), spec, (n, co, oh, ow, ci, ih, iw, kh, kw) ->
        acc[((co * cinPerGroup + ci % cinPerGroup) * kH + kh) * kW + kw] += xa.get(n, ci, ih, iw) * ga.get(n, co, oh, ow));
    wa.store(acc);
  }

  // ------------------------------------------------------------- pooling

  /** Visits every pooling window: output position and the clipped input range [h0, h1) x [w0, w1). */
  @FunctionalInterface private interface Window {
    void at(int n, int c, int oh, int ow, int h0, int h1, int w0, int w1, int divisor);
  }

  /**
   * PyTorch's window arithmetic: a window starts at {@code o*stride - pad}, ends {@code kernel} later but not
   * past the padded input; the divisor counts padding cells inside that end (count_include_pad) or only the
   * input cells. Windows made longer by ceil_mode are cut at the padded edge.
   */
  private static void forEachWindow(Tensor x, int outH, int outW, Pool2dSpec s, Window body) {
    int batch = x.size(0), chans = x.size(1), inH = x.size(2), inW = x.size(3);
    for (int n = 0; n < batch; n++)
      for (int c = 0; c < chans; c++)
        for (int oh = 0; oh < outH; oh++) {
          int hs = oh * s.strideH() - s.padH(), he = Math.min(hs + s.kernelH(), inH + s.padH());
          int h0 = Math.max(hs, 0), h1 = Math.min(he, inH);
          for (int ow = 0; ow < outW; ow++) {
            int ws = ow * s.strideW() - s.padW(), we = Math.min(ws + s.kernelW(), inW + s.padW());
            int w0 = Math.max(ws, 0), w1 = Math.min(we, inW);
            int divisor = s.countIncludePad() ? (he - hs) * (we - ws) : (h1 - h0) * (w1 - w0);
            body.at(n, c, oh, ow, h0, h1, w0, w1, divisor);
          }
        }
  }

  /**
   * Max over each window, as PyTorch: ties keep the first index in row-major order; a NaN always replaces
   * the running maximum (so the output is NaN and the index is the window's last NaN).
   */
  static void maxPool2d(Tensor x, Pool2dSpec spec, Tensor out, Tensor indices) {
    Nchw xa = Nchw.of(x), oa = Nchw.of(out), ia = Nchw.of(indices);
    int inW = x.size(3);
    forEachWindow(x, out.size(2), out.size(3), spec, (n, c, oh, ow, h0, h1, w0, w1, divisor) -> {
      double best = Double.NEGATIVE_INFINITY;
      long bestIdx = (long) h0 * inW + w0;
      for (int h = h0; h < h1; h++)
        for (int w = w0; w < w1; w++) {
          double v = xa.get(n, c, h, w);
          if (v > best || Double.isNaN(v)) {
            best = v;
            bestIdx = (long) h * inW + w;
          }
        }
      oa.set(n, c, oh, ow, best);
      Elements.setLong(ia.seg(), DType.I64, ia.at(n, c, oh, ow) * DType.I64.byteSize(), bestIdx);
    });
  }

  /** gx = 0, then gx[n, c, idx] += gy[n, c, oh, ow] for each output with saved flat index idx = h*W + w. */
  static void maxPool2dBackward(Tensor gy, Tensor indices, Tensor gx) {
    Nchw ga = Nchw.of(gy), ia = Nchw.of(indices), xa = Nchw.of(gx);
    int chans = gx.size(1), plane = gx.size(2) * gx.size(3);
    double[] acc = new double[Math.toIntExact(gx.numel())];
    for (int n = 0; n < gy.size(0); n++)
      for (int c = 0; c < gy.size(1); c++)
        for (int oh = 0; oh < gy.size(2); oh++)
          for (int ow = 0; ow < gy.size(3); ow++) {
            long idx = Elements.getLong(ia.seg(), DType.I64, ia.at(n, c, oh, ow) * DType.I64.byteSize());
            if (idx < 0 || idx >= plane)
              throw new IndexOutOfBoundsException("maxPool2dBackward: index " + idx + " outside a plane of " + plane + " elements");
            acc[(int) ((long) (n * chans + c) * plane + idx)] += ga.get(n, c, oh, ow);
          }
    xa.store(acc);
  }

  static void avgPool2d(Tensor x, Pool2dSpec spec, Tensor out) {
    Nchw xa = Nchw.of(x), oa = Nchw.of(out);
    forEachWindow(x, out.size(2), out.size(3), spec, (n, c, oh, ow, h0, h1, w0, w1, divisor) -> {
      double sum = 0;
      for (int h = h0; h < h1; h++)
        for (int w = w0; w < w1; w++) sum += xa.get(n, c, h, w);
      oa.set(n, c, oh, ow, sum / divisor);
    });
  }

  /** Each output's gradient spread evenly (1/divisor) over the input cells of its window. */
  static void avgPool2dBackward(Tensor gy, Pool2dSpec spec, Tensor gx) {
    Nchw ga = Nchw.of(gy), xa = Nchw.of(gx);
    int chans = gx.size(1), inH = gx.size(2), inW = gx.size(3);
    double[] acc = new double[Math.toIntExact(gx.numel())];
    forEachWindow(gx, gy.size(2), gy.size(3), spec, (n, c, oh, ow, h0, h1, w0, w1, divisor) -> {
      double g = ga.get(n, c, oh, ow) / divisor;
      for (int h = h0; h < h1; h++)
        for (int w = w0; w < w1; w++) acc[((n * chans + c) * inH + h) * inW + w] += g;
    });
    xa.store(acc);
  }
}
