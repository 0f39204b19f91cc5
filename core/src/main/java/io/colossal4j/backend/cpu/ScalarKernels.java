package io.colossal4j.backend.cpu;

import static io.colossal4j.backend.cpu.CpuBackend.segment;

import io.colossal4j.backend.BinaryOp;
import io.colossal4j.backend.Conv2dSpec;
import io.colossal4j.backend.Kernels;
import io.colossal4j.backend.Philox;
import io.colossal4j.backend.Pool2dSpec;
import io.colossal4j.backend.ReduceOp;
import io.colossal4j.backend.UnaryOp;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Elements;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.lang.foreign.MemorySegment;

/**
 * The reference kernels: every dtype, every stride pattern, double arithmetic, one thread. Slow and
 * obviously right; the oracle for the fast kernels and the CUDA backend. Methods here are written for
 * clarity, not speed.
 */
public class ScalarKernels implements Kernels {

  // ------------------------------------------------------------- element access
  /** Reads element at element offset {@code off} of t. */
  protected static double get(MemorySegment s, Tensor t, long off) {
    return Elements.get(s, t.dtype(), off * t.dtype().byteSize());
  }

  protected static void set(MemorySegment s, Tensor t, long off, double v) {
    Elements.set(s, t.dtype(), off * t.dtype().byteSize(), v);
  }

  // ------------------------------------------------------------- elementwise
  @Override public void fill(Tensor out, double value) {
    MemorySegment so = segment(out);
    if (value == 0 && out.isContiguous()) {
      // +0.0 and integer 0 are all-zero bytes in every dtype we have: one memset
      so.asSlice(out.offset() * out.dtype().byteSize(), out.numel() * out.dtype().byteSize()).fill((byte) 0);
      return;
    }
    Strided.forEach(out.shape(), out.strides(), out.offset(), o -> set(so, out, o, value));
  }

  @Override public void copy(Tensor src, Tensor dst) {
    checkSameShape("copy", src, dst);
    MemorySegment ss = segment(src), sd = segment(dst);
    if (src.dtype() == DType.I64 && dst.dtype() == DType.I64) {
      Strided.forEach(dst.shape(), src.strides(), src.offset(), dst.strides(), dst.offset(),
          (a, b) -> Elements.setLong(sd, DType.I64, b * 8, Elements.getLong(ss, DType.I64, a * 8)));
      return;
    }
    Strided.forEach(dst.shape(), src.strides(), src.offset(), dst.strides(), dst.offset(), (a, b) -> set(sd, dst, b, get(ss, src, a)));
  }

  @Override public void unary(UnaryOp op, Tensor x, Tensor out) {
    checkSameShape(op.name(), x, out);
    MemorySegment sx = segment(x), so = segment(out);
    Strided.forEach(out.shape(), x.strides(), x.offset(), out.strides(), out.offset(), (a, b) -> set(so, out, b, unary(op, get(sx, x, a))));
  }

  public static double unary(UnaryOp op, double v) {
    return switch (op) {
      case NEG -> -v;
      case ABS -> Math.abs(v);
      case EXP -> Math.exp(v);
      case LOG -> Math.log(v);
      case SQRT -> Math.sqrt(v);
      case RSQRT -> 1 / Math.sqrt(v);
      case TANH -> Math.tanh(v);
      case ERF -> MathFns.erf(v);
      case SIGMOID -> MathFns.sigmoid(v);
      case RELU -> v > 0 ? v : (Double.isNaN(v) ? v : 0);
      case GELU -> MathFns.gelu(v);
      case GELU_TANH -> MathFns.geluTanh(v);
      case SILU -> MathFns.silu(v);
      case SIGN -> Math.signum(v);
      case RECIPROCAL -> 1 / v;
      case SQUARE -> v * v;
      case SIN -> Math.sin(v);
      case COS -> Math.cos(v);
      case FLOOR -> Math.floor(v);
    };
  }

  @Override public void binary(BinaryOp op, Tensor a, Tensor b, Tensor out) {
    checkSameShape(op.name(), a, out);
    checkSameShape(op.name(), b, out);
    MemorySegment sa = segment(a), sb = segment(b), so = segment(out);
    Strided.forEach(out.shape(), a.strides(), a.offset(), b.strides(), b.offset(), out.strides(), out.offset(),
        (ia, ib, io) -> set(so, out, io, binary(op, get(sa, a, ia), get(sb, b, ib))));
  }

  @Override public void binaryScalar(BinaryOp op, Tensor a, double s, Tensor out) {
    checkSameShape(op.name(), a, out);
    MemorySegment sa = segment(a), so = segment(out);
    Strided.forEach(out.shape(), a.strides(), a.offset(), out.strides(), out.offset(), (ia, io) -> set(so, out, io, binary(op, get(sa, a, ia), s)));
  }

  public static double binary(BinaryOp op, double x, double y) {
    return switch (op) {
      case ADD -> x + y;
      case SUB -> x - y;
      case MUL -> x * y;
      case DIV -> x / y;
      case POW -> Math.pow(x, y);
      case MAX -> (Double.isNaN(x) || Double.isNaN(y)) ? Double.NaN : Math.max(x, y);
      case MIN -> (Double.isNaN(x) || Double.isNaN(y)) ? Double.NaN : Math.min(x, y);
      case EQ -> x == y ? 1 : 0;
      case NE -> x != y ? 1 : 0;
      case LT -> x < y ? 1 : 0;
      case LE -> x <= y ? 1 : 0;
      case GT -> x > y ? 1 : 0;
      case GE -> x >= y ? 1 : 0;
      case RELU_BACKWARD -> x > 0 ? y : 0;
      case GELU_BACKWARD -> MathFns.geluGrad(x) * y;
      case GELU_TANH_BACKWARD -> MathFns.geluTanhGrad(x) * y;
      case SILU_BACKWARD -> MathFns.siluGrad(x) * y;
      case SIGMOID_BACKWARD -> { double s = MathFns.sigmoid(x); yield s * (1 - s) * y; }
      case TANH_BACKWARD -> { double t = Math.tanh(x); yield (1 - t * t) * y; }
    };
  }

  @Override public void where(Tensor cond, Tensor a, Tensor b, Tensor out) {
    MemorySegment sc = segment(cond), sa = segment(a), sb = segment(b), so = segment(out);
    long[] ci = {0};
    // iterate cond and out together, a and b separately: four operands, so walk out's index explicitly
    Strided.forEach(out.shape(), cond.strides(), cond.offset(), a.strides(), a.offset(), b.strides(), b.offset(), (ic, ia, ib) -> {
      long io = offsetOf(out, ci[0]++);
      set(so, out, io, get(sc, cond, ic) != 0 ? get(sa, a, ia) : get(sb, b, ib));
    });
  }

  /** Element offset of the {@code linear}-th element (row-major) of t. */
  protected static long offsetOf(Tensor t, long linear) {
    long off = t.offset();
    for (int d = t.rank() - 1; d >= 0; d--) {
      int size = t.size(d);
      off += (linear % size) * t.stride(d);
      linear /= size;
    }
    return off;
  }

  // ------------------------------------------------------------- reductions
  @Override public void reduce(ReduceOp op, Tensor x, int[] dims, Tensor out) {
    MemorySegment sx = segment(x), so = segment(out);
    if (op == ReduceOp.ARGMAX || op == ReduceOp.ARGMIN) {
      int dim = dims[0];
      int n = x.size(dim);
      long step = x.stride(dim);
      forEachLine(x, dim, out, (base, ob) -> {
        double best = Double.NaN;
        long bestIdx = 0;
        for (int k = 0; k < n; k++) {
          double v = get(sx, x, base + k * step);
          if (Double.isNaN(v)) { bestIdx = k; break; }
          if (k == 0 || (op == ReduceOp.ARGMAX ? v > best : v < best)) { best = v; bestIdx = k; }
        }
        Elements.setLong(so, out.dtype(), ob * out.dtype().byteSize(), bestIdx);
      });
      return;
    }
    long outN = out.numel();
    double[] acc = new double[Math.toIntExact(outN)];
    double init = switch (op) {
      case SUM, MEAN -> 0;
      case PROD -> 1;
      case MAX -> Double.NEGATIVE_INFINITY;
      case MIN -> Double.POSITIVE_INFINITY;
      default -> throw new IllegalStateException();
    };
    java.util.Arrays.fill(acc, init);
    // linear index into acc: out's contiguous strides, 0 where x's dim is reduced
    long[] accStrides = out.shape().contiguousStrides();
    for (int d : dims) accStrides[d] = 0;
    Strided.forEach(x.shape(), x.strides(), x.offset(), accStrides, 0, (ix, ia) -> {
      double v = get(sx, x, ix);
      int i = (int) ia;
      acc[i] = switch (op) {
        case SUM, MEAN -> acc[i] + v;
        case PROD -> acc[i] * v;
        case MAX -> (Double.isNaN(v) || Double.isNaN(acc[i])) ? Double.NaN : Math.max(acc[i], v);
        case MIN -> (Double.isNaN(v) || Double.isNaN(acc[i])) ? Double.NaN : Math.min(acc[i], v);
        default -> throw new IllegalStateException();
      };
    });
    long count = 1;
    for (int d : dims) count *= x.size(d);
    long[] i = {0};
    double scale = op == ReduceOp.MEAN ? 1.0 / count : 1.0;
    Strided.forEach(out.shape(), out.strides(), out.offset(), o -> set(so, out, o, acc[(int) i[0]++] * scale));
  }

  @FunctionalInterface protected interface LineBody { void at(long xBase, long outBase); }

  /** For every position of x with {@code dim} fixed at 0, the element offsets of x and of out (same shape but size 1 or n at dim). */
  protected static void forEachLine(Tensor x, int dim, Tensor out, LineBody body) {
    Shape lines = x.shape().with(dim, 1);
    long[] os = out.strides();
    Strided.forEach(lines, x.strides(), x.offset(), os, out.offset(), body::at);
  }

  // ------------------------------------------------------------- matmul
  @Override public void matmul(Tensor a, Tensor b, Tensor out, boolean accumulate) {
    int r = out.rank();
    int m = out.size(r - 2), n = out.size(r - 1), k = a.size(r - 1);
    MemorySegment sa = segment(a), sb = segment(b), so = segment(out);
    long am = a.stride(r - 2), ak = a.stride(r - 1), bk = b.stride(r - 2), bn = b.stride(r - 1), om = out.stride(r - 2), on = out.stride(r - 1);
    Shape batch = Shape.of(java.util.Arrays.copyOf(out.shape().toArray(), r - 2));
    Strided.forEach(batch, java.util.Arrays.copyOf(a.strides(), r - 2), a.offset(), java.util.Arrays.copyOf(b.strides(), r - 2), b.offset(),
        java.util.Arrays.copyOf(out.strides(), r - 2), out.offset(), (a0, b0, o0) -> {
          for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
              double s = 0;
              for (int p = 0; p < k; p++) s += get(sa, a, a0 + i * am + p * ak) * get(sb, b, b0 + p * bk + j * bn);
              long o = o0 + i * om + j * on;
              set(so, out, o, accumulate ? get(so, out, o) + s : s);
            }
        });
  }

  /**
   * The fused linear-residual GEMM's reference (2-D operands, any strides): each element summed in double
   * (products, bias, residual) and rounded once. Not used by the op here ({@link #fusedLinearResidual} is false,
   * so the CPU composes linear and add); it is the oracle that fused kernels are tested against.
   */
  @Override public boolean matmulResidual(Tensor a, Tensor b, Tensor bias, Tensor residual, Tensor out) {
    int m = out.size(0), n = out.size(1), k = a.size(1);
    MemorySegment sa = segment(a), sb = segment(b), sr = segment(residual), so = segment(out), sv = bias == null ? null : segment(bias);
    for (int i = 0; i < m; i++)
      for (int j = 0; j < n; j++) {
        double s = 0;
        for (int p = 0; p < k; p++) s += get(sa, a, a.offset() + i * a.stride(0) + p * a.stride(1)) * get(sb, b, b.offset() + p * b.stride(0) + j * b.stride(1));
        if (bias != null) s += get(sv, bias, bias.offset() + j * bias.stride(0));
        s += get(sr, residual, residual.offset() + i * residual.stride(0) + j * residual.stride(1));
        set(so, out, out.offset() + i * out.stride(0) + j * out.stride(1), s);
      }
    return true;
  }

  /**
   * The fused GELU backward + bias gradient's reference: {@link #binary}, then the column sums of gx as stored (summed
   * in double over x's leading dims, rounded once). Not used by the op here ({@link #fusedGeluBiasGrad} is false).
   */
  @Override public boolean geluBackwardBiasGrad(BinaryOp op, Tensor x, Tensor gy, Tensor gx, Tensor gb) {
    if (op != BinaryOp.GELU_BACKWARD && op != BinaryOp.GELU_TANH_BACKWARD)
      throw new io.colossal4j.tensor.TensorException("geluBackwardBiasGrad: op must be GELU_BACKWARD or GELU_TANH_BACKWARD, got " + op);
    binary(op, x, gy, gx);
    int r = gx.rank();
    int[] keep = new int[r], dims = new int[r - 1];
    long[] strides = new long[r];
    for (int d = 0; d < r - 1; d++) { keep[d] = 1; dims[d] = d; }
    keep[r - 1] = gx.size(-1);
    strides[r - 1] = gb.stride(0);
    reduce(ReduceOp.SUM, gx, dims, gb.view(Shape.of(keep), strides, gb.offset()));
    return true;
  }

  // ------------------------------------------------------------- softmax and layer norm
  @Override public void softmax(Tensor x, int dim, boolean log, Tensor out) {
    MemorySegment sx = segment(x), so = segment(out);
    int n = x.size(dim);
    long xs = x.stride(dim), os = out.stride(dim);
    forEachLine(x, dim, out, (xb, ob) -> {
      double max = Double.NEGATIVE_INFINITY;
      for (int i = 0; i < n; i++) max = Math.max(max, get(sx, x, xb + i * xs));
      double sum = 0;
      for (int i = 0; i < n; i++) sum += Math.exp(get(sx, x, xb + i * xs) - max);
      double logSum = Math.log(sum);
      for (int i = 0; i < n; i++) {
        double z = get(sx, x, xb + i * xs) - max;
        set(so, out, ob + i * os, log ? z - logSum : Math.exp(z) / sum);
      }
    });
  }

  @Override public void softmaxBackward(Tensor y, Tensor gy, int dim, boolean log, Tensor gx) {
    MemorySegment sy = segment(y), sg = segment(gy), so = segment(gx);
    int n = y.size(dim);
    long ys = y.stride(dim), gs = gy.stride(dim), xs = gx.stride(dim);
    long[] gyStrides = gy.strides();
    Shape lines = y.shape().with(dim, 1);
    Strided.forEach(lines, y.strides(), y.offset(), gyStrides, gy.offset(), gx.strides(), gx.offset(), (yb, gb, xb) -> {
      double dot = 0;
      for (int i = 0; i < n; i++) {
        double g = get(sg, gy, gb + i * gs);
        dot += log ? g : g * get(sy, y, yb + i * ys);
      }
      for (int i = 0; i < n; i++) {
        double yv = get(sy, y, yb + i * ys), g = get(sg, gy, gb + i * gs);
        set(so, gx, xb + i * xs, log ? g - Math.exp(yv) * dot : yv * (g - dot));
      }
    });
  }

  @Override public void layerNorm(Tensor x, Tensor w, Tensor b, double eps, Tensor y, Tensor mean, Tensor rstd) {
    int n = x.size(-1);
    long rows = x.numel() / Math.max(1, n);
    MemorySegment sx = segment(x), sy = segment(y), sm = segment(mean), sr = segment(rstd);
    MemorySegment sw = w == null ? null : segment(w), sbias = b == null ? null : segment(b);
    for (long r = 0; r < rows; r++) {
      long base = r * n;
      double mu = 0;
      for (int i = 0; i < n; i++) mu += get(sx, x, x.offset() + base + i);
      mu /= n;
      double var = 0;
      for (int i = 0; i < n; i++) { double d = get(sx, x, x.offset() + base + i) - mu; var += d * d; }
      var /= n;
      double rs = 1 / Math.sqrt(var + eps);
      set(sm, mean, mean.offset() + r, mu);
      set(sr, rstd, rstd.offset() + r, rs);
      for (int i = 0; i < n; i++) {
        double v = (get(sx, x, x.offset() + base + i) - mu) * rs;
        if (sw != null) v *= get(sw, w, w.offset() + i * w.stride(0));
        if (sbias != null) v += get(sbias, b, b.offset() + i * b.stride(0));
        set(sy, y, y.offset() + base + i, v);
      }
    }
  }

  /** Per (n, p), in double: the mean, the centred variance, then y (x contiguous [N, C, ...]). */
  @Override public void layerNormChannels(Tensor x, Tensor w, Tensor b, double eps, Tensor y, Tensor mean, Tensor rstd) {
    int c = x.size(1);
    long p = x.numel() / Math.max(1L, (long) x.size(0) * c);
    MemorySegment sx = segment(x), sy = segment(y), sm = segment(mean), sr = segment(rstd);
    for (long img = 0; img < x.size(0); img++)
      for (long q = 0; q < p; q++) {
        long base = img * c * p + q, row = img * p + q;
        double mu = 0, var = 0;
        for (int i = 0; i < c; i++) mu += get(sx, x, x.offset() + base + i * p);
        mu /= c;
        for (int i = 0; i < c; i++) { double d = get(sx, x, x.offset() + base + i * p) - mu; var += d * d; }
        double rs = 1 / Math.sqrt(var / c + eps);
        set(sm, mean, mean.offset() + row, mu);
        set(sr, rstd, rstd.offset() + row, rs);
        for (int i = 0; i < c; i++) {
          double v = (get(sx, x, x.offset() + base + i * p) - mu) * rs;
          if (w != null) v *= get(segment(w), w, w.offset() + i * w.stride(0));
          if (b != null) v += get(segment(b), b, b.offset() + i * b.stride(0));
          set(sy, y, y.offset() + base + i * p, v);
        }
      }
  }

  @Override public void layerNormChannelsBackward(Tensor gy, Tensor x, Tensor w, Tensor mean, Tensor rstd, Tensor gx, Tensor gw, Tensor gb) {
    int c = x.size(1);
    long p = x.numel() / Math.max(1L, (long) x.size(0) * c);
    MemorySegment sg = segment(gy), sx = segment(x), sm = segment(mean), sr = segment(rstd), so = segment(gx);
    double[] accW = new double[c], accB = new double[c];
    for (long img = 0; img < x.size(0); img++)
      for (long q = 0; q < p; q++) {
        long base = img * c * p + q, row = img * p + q;
        double mu = get(sm, mean, mean.offset() + row), rs = get(sr, rstd, rstd.offset() + row), sumH = 0, sumHX = 0;
        for (int i = 0; i < c; i++) {
          double xh = (get(sx, x, x.offset() + base + i * p) - mu) * rs, g = get(sg, gy, gy.offset() + base + i * p);
          double h = w == null ? g : g * get(segment(w), w, w.offset() + i * w.stride(0));
          accW[i] += g * xh;
          accB[i] += g;
          sumH += h;
          sumHX += h * xh;
        }
        for (int i = 0; i < c; i++) {
          double xh = (get(sx, x, x.offset() + base + i * p) - mu) * rs, g = get(sg, gy, gy.offset() + base + i * p);
          double h = w == null ? g : g * get(segment(w), w, w.offset() + i * w.stride(0));
          set(so, gx, gx.offset() + base + i * p, rs * (h - sumH / c - xh * sumHX / c));
        }
      }
    for (int i = 0; i < c; i++) {
      if (gw != null) set(segment(gw), gw, gw.offset() + i * gw.stride(0), accW[i]);
      if (gb != null) set(segment(gb), gb, gb.offset() + i * gb.stride(0), accB[i]);
    }
  }

  @Override public void layerNormBackward(Tensor gy, Tensor x, Tensor w, Tensor mean, Tensor rstd, Tensor gx, Tensor gw, Tensor gb) {
    int n = x.size(-1);
    long rows = x.numel() / Math.max(1, n);
    MemorySegment sg = segment(gy), sx = segment(x), sm = segment(mean), sr = segment(rstd), so = segment(gx);
    MemorySegment sw = w == null ? null : segment(w);
    double[] accW = new double[n], accB = new double[n];
    for (long r = 0; r < rows; r++) {
      long base = r * n;
      double mu = get(sm, mean, mean.offset() + r), rs = get(sr, rstd, rstd.offset() + r);
      double sumG = 0, sumGX = 0;
      for (int i = 0; i < n; i++) {
        double xhat = (get(sx, x, x.offset() + base + i) - mu) * rs;
        double g = get(sg, gy, gy.offset() + base + i);
        accW[i] += g * xhat;
        accB[i] += g;
        double gw1 = sw == null ? g : g * get(sw, w, w.offset() + i * w.stride(0));
        sumG += gw1;
        sumGX += gw1 * xhat;
      }
      for (int i = 0; i < n; i++) {
        double xhat = (get(sx, x, x.offset() + base + i) - mu) * rs;
        double g = get(sg, gy, gy.offset() + base + i);
        double gw1 = sw == null ? g : g * get(sw, w, w.offset() + i * w.stride(0));
        set(so, gx, gx.offset() + base + i, rs * (gw1 - sumG / n - xhat * sumGX / n));
      }
    }
    if (gw != null) { MemorySegment s = segment(gw); for (int i = 0; i < n; i++) set(s, gw, gw.offset() + i * gw.stride(0), accW[i]); }
    if (gb != null) { MemorySegment s = segment(gb); for (int i = 0; i < n; i++) set(s, gb, gb.offset() + i * gb.stride(0), accB[i]); }
  }

  @Override public void batchNormTrain(Tensor x, Tensor w, Tensor b, double eps, Tensor y, Tensor mean, Tensor var) {
    ScalarBatchNorm.forward(x, w, b, eps, y, mean, var);
  }

  @Override public void batchNormTrainBackward(Tensor gy, Tensor x, Tensor w, Tensor mean, Tensor var, double eps,
                                               Tensor gx, Tensor gw, Tensor gb) {
    ScalarBatchNorm.backward(gy, x, w, mean, var, eps, gx, gw, gb);
  }

  @Override public void adamStep(java.util.List<io.colossal4j.backend.AdamUpdate.Param> params, io.colossal4j.backend.AdamUpdate update) {
    ScalarAdam.step(params, update);
  }

  // ------------------------------------------------------------- convolution, pooling, indexing
  // The loops live in ScalarConv and ScalarIndexing (one file per kernel family).
  @Override public void conv2d(Tensor x, Tensor w, Conv2dSpec spec, Tensor out) { ScalarConv.conv2d(x, w, spec, out); }

  @Override public void conv2dBackwardInput(Tensor gy, Tensor w, Conv2dSpec spec, Tensor gx) { ScalarConv.conv2dBackwardInput(gy, w, spec, gx); }

  @Override public void conv2dBackwardWeight(Tensor x, Tensor gy, Conv2dSpec spec, Tensor gw) { ScalarConv.conv2dBackwardWeight(x, gy, spec, gw); }

  @Override public void maxPool2d(Tensor x, Pool2dSpec spec, Tensor out, Tensor indices) { ScalarConv.maxPool2d(x, spec, out, indices); }

  @Override public void maxPool2dBackward(Tensor gy, Tensor indices, Tensor gx) { ScalarConv.maxPool2dBackward(gy, indices, gx); }

  @Override public void avgPool2d(Tensor x, Pool2dSpec spec, Tensor out) { ScalarConv.avgPool2d(x, spec, out); }

  @Override public void avgPool2dBackward(Tensor gy, Pool2dSpec spec, Tensor gx) { ScalarConv.avgPool2dBackward(gy, spec, gx); }

  @Override public void indexSelect(Tensor x, int dim, Tensor index, Tensor out) { ScalarIndexing.indexSelect(x, dim, index, out); }

  @Override public void indexAdd(Tensor out, int dim, Tensor index, Tensor src) { ScalarIndexing.indexAdd(out, dim, index, src); }

  @Override public void gather(Tensor x, int dim, Tensor index, Tensor out) { ScalarIndexing.gather(x, dim, index, out); }

  @Override public void scatterAdd(Tensor out, int dim, Tensor index, Tensor src) { ScalarIndexing.scatterAdd(out, dim, index, src); }

  // ------------------------------------------------------------- randomness
  @Override public void uniform(Tensor out, long seed, long offset) {
    MemorySegment so = segment(out);
    int[] block = new int[4];
    long n = out.numel();
    for (long i = 0; i < n; i++) {
      if ((i & 3) == 0) Philox.block(seed, offset + i / 4, block);
      set(so, out, offsetOf(out, i), Philox.toUnitFloat(block[(int) (i & 3)]));
    }
  }

  protected static void checkSameShape(String op, Tensor a, Tensor out) {
    if (!a.shape().equals(out.shape()))
      throw new io.colossal4j.tensor.TensorException(op + ": operand shape " + a.shape() + " differs from output shape " + out.shape());
  }
}
