package io.colossal4j.ops;

import io.colossal4j.autograd.Autocast;
import io.colossal4j.autograd.Autograd;
import io.colossal4j.backend.BinaryOp;
import io.colossal4j.backend.ReduceOp;
import io.colossal4j.backend.UnaryOp;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;

/** Matrix products: batched matmul with broadcast batch dims, and linear layers. */
public final class LinAlg {
  private LinAlg() {}

  /**
   * torch.matmul semantics: 1-D operands are promoted (and the added dim removed afterwards); batch dims
   * broadcast. Transposed operands are passed to the kernel as views, never copied.
   */
  public static Tensor matmul(Tensor a, Tensor b) {
    // identity unless an Autocast region is active
    return matmulIn(autocast(a), autocast(b));
  }

  private static Tensor matmulIn(Tensor a, Tensor b) {
    OpSupport.sameBackend("matmul", a, b);
    if (a.rank() == 0 || b.rank() == 0) throw new TensorException("matmul: operands must have rank >= 1, got " + a.shape() + " and " + b.shape());
    if (a.rank() == 1) return Views.squeeze(matmulIn(Views.unsqueeze(a, 0), b), -2);
    if (b.rank() == 1) return Views.squeeze(matmulIn(a, Views.unsqueeze(b, 1)), -1);
    int k = a.size(-1);
    if (b.size(-2) != k)
      throw new TensorException("matmul: inner dims differ: " + a.shape() + " @ " + b.shape() + " (" + k + " vs " + b.size(-2) + ")");
    Shape batch = Shape.broadcast("matmul", batchShape(a), batchShape(b));
    Shape outShape = append(batch, a.size(-2), b.size(-1));
    Tensor av = OpSupport.broadcastView(a, append(batch, a.size(-2), k));
    Tensor bv = OpSupport.broadcastView(b, append(batch, k, b.size(-1)));
    Tensor out = OpSupport.empty(outShape, DType.promote(a.dtype(), b.dtype()), a.backend());
    a.backend().kernels().matmul(av, bv, out, false);
    boolean ga = a.requiresGrad(), gb = b.requiresGrad();
    return Autograd.recordSaving("matmul", out, Autograd.saving(gb ? a : null, ga ? b : null), g -> new Tensor[] {
        ga ? OpSupport.sumToShape(matmul(g, Views.transpose(bv, -1, -2)), a.shape()) : null,
        gb ? OpSupport.sumToShape(matmul(Views.transpose(av, -1, -2), g), b.shape()) : null}, a, b);
  }

  /**
   * y = x @ w^T + b, with w of shape [out, in] (PyTorch's layout), b of shape [out] or null, x of shape
   * [..., in]. The leading dims of x are folded into the rows of one [M, in] x [in, out] product (M = the
   * product of the leading dims), so a linear layer over [B, N, in] tokens is one GEMM, not B small ones
   * against a broadcast weight. With a bias, the output rows are first set to b and the product is
   * accumulated onto them. Backward, also one product each: gx = g·w, gw = gᵀ·x (no sum over a broadcast
   * batch), gb = the column sums of g.
   */
  public static Tensor linear(Tensor x, Tensor w, Tensor b) {
    checkLinear("linear", x, w, b);
    Tensor xc = autocast(x), wc = autocast(w), bc = autocast(b);
    int in = w.size(1), outF = w.size(0);
    Tensor out = OpSupport.empty(linearShape(x, w), DType.promote(xc.dtype(), wc.dtype()), x.backend());
    int m = (int) (x.numel() / in);
    Tensor x2 = rows(xc, m, in), out2 = rows(out, m, outF);
    var k = x.backend().kernels();
    if (m > 0) {
      if (bc != null) k.matmulBias(x2, transposed(wc), bc, out2);   // CUDA: the bias in cuBLASLt's epilogue, one pass over out
      else k.matmul(x2, transposed(wc), out2, false);
    }
    LinearBackward back = LinearBackward.of(xc, wc, bc, x2, x.shape());
    return Autograd.recordSaving("linear", out, back.saved(), back::grads, xc, wc, bc);
  }

  /**
   * residual + linear(x, w, b) (b may be null): the output projection of a transformer block with its residual
   * add. residual must have the linear output's shape ([..., out], x's leading dims); the result has the dtype
   * {@code Arith.add(residual, linear(x, w, b))} gives, and autocast treats x, w and b as {@link #linear} does.
   * Where the backend fuses the add into the GEMM (cuBLASLt on CUDA: D = x·wᵀ + b + C with C = the residual,
   * one pass over the output instead of a GEMM and an elementwise add), residual must have linear's output dtype
   * and rows that fold into one stride; otherwise (and on the CPU, so its numbers stay those of the composite,
   * bit for bit) this is exactly {@code Arith.add(residual, linear(x, w, b))}. Backward: residual's gradient is
   * the output gradient itself (no copy); x's, w's and b's are linear's.
   */
  public static Tensor linearAdd(Tensor x, Tensor w, Tensor b, Tensor residual) {
    checkLinear("linearAdd", x, w, b);
    Shape outShape = linearShape(x, w);
    if (!residual.shape().equals(outShape))
      throw new TensorException("linearAdd: residual shape " + residual.shape() + " must equal the linear output's shape " + outShape
          + " (input " + x.shape() + ", weight " + w.shape() + ")");
    OpSupport.sameBackend("linearAdd", x, residual);
    DType outType = DType.promote(Autocast.target(x.dtype()), Autocast.target(w.dtype()));
    int in = w.size(1), outF = w.size(0);
    int m = (int) (x.numel() / in);
    var k = x.backend().kernels();
    Tensor res2 = m > 0 && residual.dtype() == outType && k.fusedLinearResidual() ? rowsView(residual, m, outF) : null;
    if (res2 == null) return Arith.add(residual, linear(x, w, b));
    Tensor xc = autocast(x), wc = autocast(w), bc = autocast(b);
    Tensor out = OpSupport.empty(outShape, outType, x.backend());
    Tensor x2 = rows(xc, m, in);
    if (!k.matmulResidual(x2, transposed(wc), bc, res2, rows(out, m, outF))) {
      out.storage().release();   // declined (operands the fused GEMM does not take): the composite, on the casts made
      return Arith.add(residual, linear(xc, wc, bc));
    }
    LinearBackward back = LinearBackward.of(xc, wc, bc, x2, x.shape());
    return Autograd.recordSaving("linear_add", out, back.saved(), g -> {
      Tensor[] lin = back.grads(g);
      return new Tensor[] {lin[0], lin[1], lin[2], g};
    }, xc, wc, bc, residual);
  }

  /** The GELU of {@link #linearGelu}: exact, x·Φ(x) ({@link Arith#gelu}), or the tanh form ({@link Arith#geluTanh}). */
  public enum Gelu {
    EXACT(UnaryOp.GELU, BinaryOp.GELU_BACKWARD), TANH(UnaryOp.GELU_TANH, BinaryOp.GELU_TANH_BACKWARD);

    private final UnaryOp forward;
    private final BinaryOp backward;

    Gelu(UnaryOp forward, BinaryOp backward) {
      this.forward = forward;
      this.backward = backward;
    }

    /** This GELU as its own op (with autograd). */
    public Tensor apply(Tensor x) { return this == EXACT ? Arith.gelu(x) : Arith.geluTanh(x); }
  }

  /**
   * gelu(linear(x, w, b)): an MLP's first layer and its activation, with the same values as the two ops. Where the
   * backend fuses the GELU backward with the bias gradient ({@code Kernels.fusedGeluBiasGrad}, CUDA), the backward
   * computes dgelu = GELU'(pre)·g and b's gradient, its column sums, in one pass (saving a read of the [tokens,
   * hidden] dgelu), then w's and x's gradients as linear's backward does; the forward is linear's GEMM (bias in the
   * epilogue) and the GELU kernel, as the composite, or one GEMM that applies the GELU in its epilogue and also
   * stores the pre-activation ({@code Kernels.matmulBiasGelu}: CUDA, tanh GELU, 16-bit outputs). Without a bias, or on the CPU (so its numbers stay those of the
   * composite, bit for bit), this is exactly {@code gelu.apply(linear(x, w, b))}. Saves what the two ops save: x's
   * rows and w for linear, the pre-activation for GELU.
   */
  public static Tensor linearGelu(Tensor x, Tensor w, Tensor b, Gelu gelu) {
    checkLinear("linearGelu", x, w, b);
    if (gelu == null) throw new TensorException("linearGelu: the GELU must be Gelu.EXACT or Gelu.TANH, got null");
    DType outType = DType.promote(Autocast.target(x.dtype()), Autocast.target(w.dtype()));
    if (!outType.isFloating())
      throw new TensorException("linearGelu: needs floating input and weight, got " + x.dtype() + " and " + w.dtype());
    var k = x.backend().kernels();
    int in = w.size(1), outF = w.size(0);
    int m = (int) (x.numel() / in);
    if (b == null || m == 0 || !k.fusedGeluBiasGrad()) return gelu.apply(linear(x, w, b));
    Tensor xc = autocast(x), wc = autocast(w), bc = autocast(b);
    Tensor pre = OpSupport.empty(linearShape(x, w), outType, x.backend());
    Tensor x2 = rows(xc, m, in);
    Tensor out = OpSupport.emptyLike(pre);
    if (!k.matmulBiasGelu(gelu.forward, x2, transposed(wc), bc, rows(pre, m, outF), rows(out, m, outF))) {
      k.matmulBias(x2, transposed(wc), bc, rows(pre, m, outF));
      k.unary(gelu.forward, pre, out);
    }
    // linear's backward without its bias sum (done with the GELU backward below)
    LinearBackward lin = new LinearBackward(x2, wc, null, x.shape(), xc.requiresGrad(), wc.requiresGrad(), false);
    boolean gb = bc.requiresGrad();
    Tensor[] saved = Autograd.saving(pre, lin.gw() ? x2 : null, lin.gx() ? wc : null);
    return Autograd.recordSaving("linear_gelu", out, saved, g -> {
      Tensor h = OpSupport.empty(pre.shape(), g.dtype(), g.backend());
      Tensor gbias = gb ? OpSupport.gradientFor(bc, Shape.of(outF), h.dtype(), g.backend()) : null;
      var kk = g.backend().kernels();
      if (gbias == null || !kk.geluBackwardBiasGrad(gelu.backward, pre, g, h, gbias)) {
        kk.binary(gelu.backward, pre, g, h);
        if (gbias != null) kk.reduce(ReduceOp.SUM, rows(h, m, outF), new int[] {0}, gbias.view(Shape.of(1, outF), new long[] {0, gbias.stride(0)}, gbias.offset()));
      }
      Tensor[] wx = lin.grads(h);
      return new Tensor[] {wx[0], wx[1], gbias};
    }, xc, wc, bc);
  }

  /** t in the dtype an active Autocast region computes matrix products in (t itself outside one); null stays null. */
  private static Tensor autocast(Tensor t) { return t == null ? null : Arith.cast(t, Autocast.target(t.dtype())); }

  /** The checks shared by linear, linearAdd and linearGelu; errors name {@code op}. */
  private static void checkLinear(String op, Tensor x, Tensor w, Tensor b) {
    if (w.rank() != 2) throw new TensorException(op + ": weight must be [out, in], got " + w.shape());
    if (x.rank() < 1 || x.size(-1) != w.size(1))
      throw new TensorException(op + ": input features " + (x.rank() < 1 ? "none" : x.size(-1)) + " (shape " + x.shape()
          + ") != weight in-features " + w.size(1) + " (shape " + w.shape() + ")");
    if (b != null && (b.rank() != 1 || b.size(0) != w.size(0)))
      throw new TensorException(op + ": bias must be [" + w.size(0) + "] for weight " + w.shape() + ", got " + b.shape());
    OpSupport.sameBackend(op, x, w);
  }

  /** x's shape with the last dim set to w's out-features. */
  private static Shape linearShape(Tensor x, Tensor w) {
    int[] outDims = x.shape().toArray();
    outDims[outDims.length - 1] = w.size(0);
    return Shape.of(outDims);
  }

  /** w [out, in] as its transpose [in, out], a view. */
  private static Tensor transposed(Tensor w) {
    return w.view(Shape.of(w.size(1), w.size(0)), new long[] {w.stride(1), w.stride(0)}, w.offset());
  }

  /**
   * The backward of y = x·wᵀ + b over x's rows, shared by linear and linearAdd: what it reads (x's rows when w
   * needs a gradient, w when x does) and which inputs want a gradient, fixed at the forward.
   */
  private record LinearBackward(Tensor x2, Tensor w, Tensor b, Shape xShape, boolean gx, boolean gw, boolean gb) {
    static LinearBackward of(Tensor xc, Tensor wc, Tensor bc, Tensor x2, Shape xShape) {
      return new LinearBackward(x2, wc, bc, xShape, xc.requiresGrad(), wc.requiresGrad(), bc != null && bc.requiresGrad());
    }

    Tensor[] saved() { return Autograd.saving(gw ? x2 : null, gx ? w : null); }

    /** {gx, gw, gb} (null where not wanted) from the output gradient g [..., out]. */
    Tensor[] grads(Tensor g) {
      Tensor g2 = rows(g, x2.size(0), w.size(0));
      // the input gradient first: it is on the critical path, and a backend that computes the weight gradient beside
      // its main stream (CUDA) then runs that GEMM under the next ops, which fill its last wave
      Tensor gradX = gx ? asShape(matmul(g2, w), xShape) : null;
      Tensor[] wb = gw ? weightGrads(g2, x2, w, gb ? b : null) : new Tensor[] {null, gb ? Reduce.sum(g2, false, 0) : null};
      return new Tensor[] {gradX, wb[0], wb[1]};
    }
  }

  /**
   * {gᵀ·x, the column sums of g (when b is non-null)} for g [rows, out] and x [rows, in], in one kernel call,
   * without autograd; each written straight into the gradient of w (of b) when that leaf has none yet.
   */
  private static Tensor[] weightGrads(Tensor g2, Tensor x2, Tensor w, Tensor b) {
    Tensor gw = OpSupport.gradientFor(w, Shape.of(g2.size(1), x2.size(1)), DType.promote(g2.dtype(), x2.dtype()), g2.backend());
    Tensor gb = b != null ? OpSupport.gradientFor(b, Shape.of(g2.size(1)), g2.dtype(), g2.backend()) : null;
    g2.backend().kernels().linearWeightGrad(g2, x2, gw, gb);
    return new Tensor[] {gw, gb};
  }

  /** A contiguous tensor viewed with another shape of the same size, without autograd. */
  private static Tensor asShape(Tensor t, Shape s) { return t.view(s, s.contiguousStrides(), t.offset()); }

  /**
   * t [..., cols] as a [rows, cols] tensor without autograd: a view when its leading dims fold into one
   * stride (contiguous tensors and most views), otherwise a contiguous copy.
   */
  private static Tensor rows(Tensor t, int rows, int cols) {
    Tensor v = rowsView(t, rows, cols);
    if (v != null) return v;
    Shape s2 = Shape.of(rows, cols);
    Tensor c = OpSupport.empty(t.shape(), t.dtype(), t.backend());
    t.backend().kernels().copy(t, c);
    return c.view(s2, s2.contiguousStrides(), c.offset());
  }

  /** t [..., cols] as a [rows, cols] view without autograd when its leading dims fold into one stride, else null. */
  private static Tensor rowsView(Tensor t, int rows, int cols) {
    Shape s2 = Shape.of(rows, cols);
    long colStride = t.stride(-1);
    if (t.rank() == 1) return t.view(s2, new long[] {cols * colStride, colStride}, t.offset());
    long rowStride = -1, expected = -1;
    for (int d = t.rank() - 2; d >= 0; d--) {
      if (t.size(d) == 1) continue;
      if (rowStride < 0) rowStride = expected = t.stride(d);
      else if (t.stride(d) != expected) return null;
      expected *= t.size(d);
    }
    return t.view(s2, new long[] {rowStride < 0 ? cols * colStride : rowStride, colStride}, t.offset());
  }

  private static Shape batchShape(Tensor t) {
    return Shape.of(java.util.Arrays.copyOf(t.shape().toArray(), t.rank() - 2));
  }

  private static Shape append(Shape s, int m, int n) {
    int[] d = java.util.Arrays.copyOf(s.toArray(), s.rank() + 2);
    d[s.rank()] = m;
    d[s.rank() + 1] = n;
    return Shape.of(d);
  }
}
