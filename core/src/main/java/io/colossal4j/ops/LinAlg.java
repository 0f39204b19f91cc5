package io.colossal4j.ops;

import io.colossal4j.autograd.Autocast;
import io.colossal4j.autograd.Autograd;
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
    return matmulIn(Arith.cast(a, Autocast.target(a.dtype())), Arith.cast(b, Autocast.target(b.dtype())));
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
    return Autograd.record("matmul", out, g -> new Tensor[] {
        ga ? OpSupport.sumToShape(matmul(g, Views.transpose(bv, -1, -2)), a.shape()) : null,
        gb ? OpSupport.sumToShape(matmul(Views.transpose(av, -1, -2), g), b.shape()) : null}, a, b);
  }

  /** y = x @ w^T + b, with w of shape [out, in] (PyTorch's layout) and b of shape [out] or null. */
  public static Tensor linear(Tensor x, Tensor w, Tensor b) {
    if (w.rank() != 2) throw new TensorException("linear: weight must be [out, in], got " + w.shape());
    if (x.size(-1) != w.size(1))
      throw new TensorException("linear: input features " + x.size(-1) + " (shape " + x.shape() + ") != weight in-features " + w.size(1) + " (shape " + w.shape() + ")");
    Tensor y = matmul(x, Views.transpose(w, 0, 1));
    return b == null ? y : Arith.add(y, Arith.cast(b, Autocast.target(b.dtype())));
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
