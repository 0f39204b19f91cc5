package io.colossal4j.ops;

import io.colossal4j.autograd.Autograd;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;
import java.util.Arrays;

/**
 * Padding, rolling and resampling, PyTorch semantics, with their gradients.
 *
 * <p>Resampling (interpolate, and adaptive pooling in {@link Conv}) is separable: out = Mh @ x @ Mw^T with
 * small [out, in] weight matrices built on the host ({@link Interpolation}). Applying them with
 * {@link LinAlg#matmul} makes the backward the transposed products, so no resampling kernel or backward
 * rule is needed on any backend.
 */
public final class Resize {
  private Resize() {}

  /** How interpolate computes source weights. */
  public enum Mode {
    /** PyTorch's "nearest": source index floor(dst * in / out). */
    NEAREST,
    /** Linear in each spatial dim (PyTorch's "bilinear"). */
    BILINEAR,
    /** Keys' cubic convolution with A = -0.75, border pixels replicated (PyTorch's "bicubic"). */
    BICUBIC
  }

  // ------------------------------------------------------------- pad

  /**
   * Constant padding, as PyTorch's F.pad: {@code pads} holds (before, after) pairs starting from the last dim,
   * so (left, right, top, bottom) pads the W and H dims of NCHW. Pads must be >= 0 (use narrow to crop).
   */
  public static Tensor pad(Tensor x, double value, int... pads) {
    if (pads.length % 2 != 0 || pads.length / 2 > x.rank())
      throw new TensorException("pad: needs (before, after) pairs for at most " + x.rank() + " dims of " + x.shape() + ", got " + Arrays.toString(pads));
    int[] outDims = x.shape().toArray();
    int[] before = new int[x.rank()];
    for (int i = 0; i < pads.length / 2; i++) {
      int d = x.rank() - 1 - i;
      if (pads[2 * i] < 0 || pads[2 * i + 1] < 0)
        throw new TensorException("pad: negative pads are not supported, got " + Arrays.toString(pads) + "; crop with Views.narrow");
      before[d] = pads[2 * i];
      outDims[d] += pads[2 * i] + pads[2 * i + 1];
    }
    Tensor out = Tensor.full(Shape.of(outDims), x.dtype(), x.backend(), value);
    x.backend().kernels().copy(x, interior(out, before, x.shape()));
    Shape in = x.shape();
    return Autograd.recordSaving("pad", out, Autograd.NOTHING, g -> new Tensor[] {Conv.dense(interior(g, before, in))}, x);
  }

  /** The view of t at offsets {@code before} with shape {@code inner}. */
  private static Tensor interior(Tensor t, int[] before, Shape inner) {
    long off = t.offset();
    for (int d = 0; d < before.length; d++) off += before[d] * t.stride(d);
    return t.view(inner, t.strides(), off);
  }

  // ------------------------------------------------------------- roll

  /**
   * torch.roll(x, shifts, dims): element i of each rolled dim moves to (i + shift) mod n. Used by Swin for
   * its shifted windows (shift -s before attention, +s after).
   */
  public static Tensor roll(Tensor x, int[] shifts, int[] dims) {
    if (shifts.length != dims.length || dims.length == 0)
      throw new TensorException("roll: shifts " + Arrays.toString(shifts) + " and dims " + Arrays.toString(dims) + " must be non-empty and of equal length");
    Tensor r = x;
    for (int i = 0; i < dims.length; i++) {
      int d = x.shape().axis(dims[i]);
      int n = x.size(d);
      int s = n == 0 ? 0 : Math.floorMod(shifts[i], n);
      if (s == 0) continue;
      // the last s elements come first
      r = Views.cat(d, Views.narrow(r, d, n - s, s), Views.narrow(r, d, 0, n - s));
    }
    return r;
  }

  public static Tensor roll(Tensor x, int shift, int dim) { return roll(x, new int[] {shift}, new int[] {dim}); }

  // ------------------------------------------------------------- interpolate

  /**
   * F.interpolate(x, size=(outH, outW), mode, align_corners) on NCHW x. With align_corners the corner pixels
   * of input and output coincide (src = dst * (in-1)/(out-1)); without, pixel centres do
   * (src = (dst + 0.5) * in/out - 0.5). NEAREST takes no align_corners (false). Returns x itself when the
   * size does not change.
   */
  public static Tensor interpolate(Tensor x, int outH, int outW, Mode mode, boolean alignCorners) {
    checkInterpolate(x, outH, outW, mode, alignCorners);
    int inH = x.size(2), inW = x.size(3);
    if (inH == outH && inW == outW) return x;
    return separable(x, Interpolation.weights(mode, inH, outH, alignCorners), outH,
        Interpolation.weights(mode, inW, outW, alignCorners), outW);
  }

  /**
   * F.interpolate(x, size=(outH, outW), mode, align_corners, antialias=True) on NCHW x, BILINEAR or BICUBIC:
   * when shrinking, each output averages every input pixel under a filter widened by the scale (no aliasing);
   * when enlarging, the bicubic filter is Pillow's (A = -0.5), not {@link #interpolate}'s. timm resizes
   * position embeddings this way ({@code resample_abs_pos_embed}). Returns x itself when the size does not
   * change.
   */
  public static Tensor interpolateAntialiased(Tensor x, int outH, int outW, Mode mode, boolean alignCorners) {
    checkInterpolate(x, outH, outW, mode, alignCorners);
    if (mode == Mode.NEAREST) throw new TensorException("interpolateAntialiased: antialiasing applies to BILINEAR and BICUBIC, not NEAREST");
    int inH = x.size(2), inW = x.size(3);
    if (inH == outH && inW == outW) return x;
    return separable(x, Interpolation.antialiasedWeights(mode, inH, outH, alignCorners), outH,
        Interpolation.antialiasedWeights(mode, inW, outW, alignCorners), outW);
  }

  private static void checkInterpolate(Tensor x, int outH, int outW, Mode mode, boolean alignCorners) {
    if (x.rank() != 4) throw new TensorException("interpolate: input must be [N, C, H, W], got " + x.shape());
    OpSupport.requireFloating("interpolate", x);
    if (outH < 1 || outW < 1) throw new TensorException("interpolate: output size must be >= 1, got " + outH + "x" + outW);
    if (mode == Mode.NEAREST && alignCorners)
      throw new TensorException("interpolate: align_corners only applies to BILINEAR and BICUBIC, not NEAREST");
  }

  /**
   * out[..., i, j] = sum_{h, w} mh[i, h] * x[..., h, w] * mw[j, w] for x [N, C, H, W], with mh [outH, H] and
   * mw [outW, W] row-major host matrices. A dim whose size is kept and whose matrix is the identity is left
   * alone. Half-precision inputs are resampled in f32 and rounded once at the end.
   */
  static Tensor separable(Tensor x, double[] mh, int outH, double[] mw, int outW) {
    int inH = x.size(2), inW = x.size(3);
    DType dt = x.dtype() == DType.F64 ? DType.F64 : DType.F32;
    Tensor r = Arith.cast(x, dt);
    if (!isIdentity(mw, outW, inW)) {
      Tensor mwT = Views.transpose(Tensor.of(mw, Shape.of(outW, inW), dt, x.backend()), 0, 1);
      r = LinAlg.matmul(r, mwT);
    }
    if (!isIdentity(mh, outH, inH)) r = LinAlg.matmul(Tensor.of(mh, Shape.of(outH, inH), dt, x.backend()), r);
    if (r == x) r = Views.contiguous(x);
    return Arith.cast(r, x.dtype());
  }

  private static boolean isIdentity(double[] m, int out, int in) {
    if (out != in) return false;
    for (int i = 0; i < out; i++)
      for (int j = 0; j < in; j++) if (m[i * in + j] != (i == j ? 1 : 0)) return false;
    return true;
  }
}
