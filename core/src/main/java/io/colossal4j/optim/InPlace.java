package io.colossal4j.optim;

import io.colossal4j.backend.BinaryOp;
import io.colossal4j.backend.ReduceOp;
import io.colossal4j.backend.UnaryOp;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.MemoryCategory;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;

/**
 * In-place updates for optimizer steps, written directly against the kernels (no autograd, no output
 * allocation beyond one scratch tensor). All tensors of one call share shape and backend.
 */
final class InPlace {
  private InPlace() {}

  /** t *= s. */
  static void scale(Tensor t, double s) { t.backend().kernels().binaryScalar(BinaryOp.MUL, t, s, t); }

  /** y += alpha * x. */
  static void axpy(Tensor y, double alpha, Tensor x, Tensor scratch) {
    var k = y.backend().kernels();
    k.binaryScalar(BinaryOp.MUL, x, alpha, scratch);
    k.binary(BinaryOp.ADD, y, scratch, y);
  }

  /** y += alpha * a * b. */
  static void addProduct(Tensor y, double alpha, Tensor a, Tensor b, Tensor scratch) {
    var k = y.backend().kernels();
    k.binary(BinaryOp.MUL, a, b, scratch);
    if (alpha != 1) k.binaryScalar(BinaryOp.MUL, scratch, alpha, scratch);
    k.binary(BinaryOp.ADD, y, scratch, y);
  }

  /** out = m / (sqrt(v) + eps), with m and v already bias-corrected by the given factors. */
  static void adamDirection(Tensor m, double mScale, Tensor v, double vScale, double eps, Tensor out) {
    var k = out.backend().kernels();
    k.binaryScalar(BinaryOp.MUL, v, vScale, out);
    k.unary(UnaryOp.SQRT, out, out);
    k.binaryScalar(BinaryOp.ADD, out, eps, out);
    k.binary(BinaryOp.DIV, m, out, out);
    if (mScale != 1) k.binaryScalar(BinaryOp.MUL, out, mScale, out);
  }

  static Tensor zerosLike(Tensor t) {
    Tensor z = Tensor.empty(t.shape(), t.dtype(), t.backend(), MemoryCategory.OPTIMIZER_STATE);
    t.backend().kernels().fill(z, 0);
    return z;
  }

  static Tensor scratch(Tensor t) { return Tensor.empty(t.shape(), t.dtype(), t.backend(), MemoryCategory.TEMPORARY); }

  /** Sum of squares of all elements, accumulated in f64 (see {@link #sumOfSquares(java.util.List)}). */
  static double sumOfSquares(Tensor t) { return sumOfSquares(java.util.List.of(t)); }

  static double norm(Tensor t) { return Math.sqrt(sumOfSquares(t)); }

  /**
   * The sum of squares of all elements of all tensors, with one host synchronisation per backend (not one per
   * tensor: a step's gradient norm over hundreds of parameters would otherwise stall the device hundreds of
   * times). Squares are formed in f32 (f64 for f64 tensors) from 16-bit values, each tensor's sum goes to a
   * slot of an f64 vector on its device, and the slots are summed there.
   */
  static double sumOfSquares(java.util.List<Tensor> ts) {
    java.util.Map<io.colossal4j.backend.Backend, java.util.List<Tensor>> byBackend = new java.util.LinkedHashMap<>();
    for (Tensor t : ts) byBackend.computeIfAbsent(t.backend(), b -> new java.util.ArrayList<>()).add(t);
    double total = 0;
    for (var e : byBackend.entrySet()) total += sumOfSquaresOn(e.getKey(), e.getValue());
    return total;
  }

  private static double sumOfSquaresOn(io.colossal4j.backend.Backend b, java.util.List<Tensor> ts) {
    Tensor sum = sumOfSquaresOnDevice(b, ts);
    double v = sum.item();
    sum.storage().release();
    return v;
  }

  /** The sum of squares of all elements of {@code ts} (all on {@code b}) as a one-element f64 tensor on {@code b}, not read back. */
  static Tensor sumOfSquaresOnDevice(io.colossal4j.backend.Backend b, java.util.List<Tensor> ts) {
    var k = b.kernels();
    Tensor sum = Tensor.empty(Shape.of(1), DType.F64, b, MemoryCategory.TEMPORARY);
    if (ts.isEmpty()) {
      k.fill(sum, 0);
      return sum;
    }
    Tensor slots = Tensor.empty(Shape.of(ts.size()), DType.F64, b, MemoryCategory.TEMPORARY);
    k.sumOfSquares(ts, slots);
    k.reduce(ReduceOp.SUM, slots, new int[] {0}, sum);
    slots.storage().release();
    return sum;
  }
}
