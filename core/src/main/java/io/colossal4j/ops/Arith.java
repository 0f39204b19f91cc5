package io.colossal4j.ops;

import static io.colossal4j.ops.OpSupport.broadcastView;
import static io.colossal4j.ops.OpSupport.sumToShape;

import io.colossal4j.autograd.Autograd;
import io.colossal4j.backend.BinaryOp;
import io.colossal4j.backend.UnaryOp;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;

/** Broadcasting arithmetic, comparisons, selection and the elementwise math functions, with their gradients. */
public final class Arith {
  private Arith() {}

  // ------------------------------------------------------------- binary, broadcasting
  public static Tensor add(Tensor a, Tensor b) {
    Tensor out = binary("add", BinaryOp.ADD, a, b);
    Shape sa = a.shape(), sb = b.shape();
    return Autograd.recordSaving("add", out, Autograd.NOTHING, g -> new Tensor[] {sumToShape(g, sa), sumToShape(g, sb)}, a, b);
  }

  public static Tensor sub(Tensor a, Tensor b) {
    Tensor out = binary("sub", BinaryOp.SUB, a, b);
    Shape sa = a.shape(), sb = b.shape();
    return Autograd.recordSaving("sub", out, Autograd.NOTHING, g -> new Tensor[] {sumToShape(g, sa), sumToShape(neg(g), sb)}, a, b);
  }

  public static Tensor mul(Tensor a, Tensor b) {
    Tensor out = binary("mul", BinaryOp.MUL, a, b);
    boolean ga = a.requiresGrad(), gb = b.requiresGrad();
    return Autograd.recordSaving("mul", out, Autograd.saving(gb ? a : null, ga ? b : null), g -> new Tensor[] {
        ga ? sumToShape(mul(g, b), a.shape()) : null,
        gb ? sumToShape(mul(g, a), b.shape()) : null}, a, b);
  }

  public static Tensor div(Tensor a, Tensor b) {
    Tensor out = binary("div", BinaryOp.DIV, a, b);
    boolean ga = a.requiresGrad(), gb = b.requiresGrad();
    return Autograd.record("div", out, g -> new Tensor[] {
        ga ? sumToShape(div(g, b), a.shape()) : null,
        gb ? sumToShape(neg(div(mul(g, out.detach()), b)), b.shape()) : null}, a, b);
  }

  /** Elementwise maximum; the gradient goes to the larger operand (split evenly on ties, as PyTorch). */
  public static Tensor maximum(Tensor a, Tensor b) { return minMax("maximum", BinaryOp.MAX, BinaryOp.GT, a, b); }

  public static Tensor minimum(Tensor a, Tensor b) { return minMax("minimum", BinaryOp.MIN, BinaryOp.LT, a, b); }

  private static Tensor minMax(String name, BinaryOp op, BinaryOp wins, Tensor a, Tensor b) {
    Tensor out = binary(name, op, a, b);
    return Autograd.record(name, out, g -> {
      Tensor aw = cast(compare(wins, a, b), g.dtype());
      Tensor tie = mulScalar(cast(compare(BinaryOp.EQ, a, b), g.dtype()), 0.5);
      Tensor wa = add(aw, tie);
      Tensor wb = sub(addScalar(mulScalar(aw, -1), 1), tie);
      return new Tensor[] {sumToShape(mul(g, wa), a.shape()), sumToShape(mul(g, wb), b.shape())};
    }, a, b);
  }

  static Tensor binary(String name, BinaryOp op, Tensor a, Tensor b) {
    OpSupport.sameBackend(name, a, b);
    Shape shape = Shape.broadcast(name, a.shape(), b.shape());
    DType dt = DType.promote(a.dtype(), b.dtype());
    Tensor out = OpSupport.empty(shape, op.isComparison() ? DType.BOOL : dt, a.backend());
    a.backend().kernels().binary(op, broadcastView(a, shape), broadcastView(b, shape), out);
    return out;
  }

  // ------------------------------------------------------------- with a scalar
  public static Tensor addScalar(Tensor a, double s) {
    Tensor out = scalarOp(BinaryOp.ADD, a, s);
    return Autograd.recordSaving("add_scalar", out, Autograd.NOTHING, g -> new Tensor[] {g}, a);
  }

  public static Tensor mulScalar(Tensor a, double s) {
    Tensor out = scalarOp(BinaryOp.MUL, a, s);
    return Autograd.recordSaving("mul_scalar", out, Autograd.NOTHING, g -> new Tensor[] {mulScalar(g, s)}, a);
  }

  /** a^p for a constant exponent. */
  public static Tensor pow(Tensor a, double p) {
    Tensor out = scalarOp(BinaryOp.POW, a, p);
    return Autograd.record("pow", out, g -> new Tensor[] {mul(g, mulScalar(pow(a, p - 1), p))}, a);
  }

  /** Elementwise a^b (both tensors). */
  public static Tensor pow(Tensor a, Tensor b) {
    Tensor out = binary("pow", BinaryOp.POW, a, b);
    boolean ga = a.requiresGrad(), gb = b.requiresGrad();
    return Autograd.record("pow", out, g -> new Tensor[] {
        ga ? sumToShape(mul(g, mul(b, pow(a, addScalar(b, -1)))), a.shape()) : null,
        gb ? sumToShape(mul(g, mul(out.detach(), log(a))), b.shape()) : null}, a, b);
  }

  private static Tensor scalarOp(BinaryOp op, Tensor a, double s) {
    Tensor out = OpSupport.emptyLike(a);
    a.backend().kernels().binaryScalar(op, a, s, out);
    return out;
  }

  // ------------------------------------------------------------- comparisons and selection (not differentiable)
  /** a op b as a bool tensor, broadcasting. */
  public static Tensor compare(BinaryOp op, Tensor a, Tensor b) {
    if (!op.isComparison()) throw new TensorException("compare: " + op + " is not a comparison");
    return binary(op.name().toLowerCase(), op, a, b);
  }

  public static Tensor compareScalar(BinaryOp op, Tensor a, double s) {
    if (!op.isComparison()) throw new TensorException("compare: " + op + " is not a comparison");
    Tensor out = OpSupport.empty(a.shape(), DType.BOOL, a.backend());
    a.backend().kernels().binaryScalar(op, a, s, out);
    return out;
  }

  /** cond ? a : b, broadcasting all three; differentiable in a and b. */
  public static Tensor where(Tensor cond, Tensor a, Tensor b) {
    OpSupport.sameBackend("where", a, b);
    Shape shape = Shape.broadcast("where", Shape.broadcast("where", cond.shape(), a.shape()), b.shape());
    Tensor out = OpSupport.empty(shape, DType.promote(a.dtype(), b.dtype()), a.backend());
    a.backend().kernels().where(broadcastView(cond, shape), broadcastView(a, shape), broadcastView(b, shape), out);
    return Autograd.record("where", out, g -> {
      Tensor zero = Tensor.zeros(Shape.scalar(), g.dtype(), g.backend());
      return new Tensor[] {null, sumToShape(where(cond, g, zero), a.shape()), sumToShape(where(cond, zero, g), b.shape())};
    }, cond, a, b);
  }

  /** x with {@code value} where mask is true. */
  public static Tensor maskedFill(Tensor x, Tensor mask, double value) {
    return where(mask, Tensor.scalar(value, x.dtype(), x.backend()), x);
  }

  /** A copy in another dtype; the gradient is cast back. */
  public static Tensor cast(Tensor x, DType dtype) {
    if (x.dtype() == dtype) return x;
    Tensor out = OpSupport.empty(x.shape(), dtype, x.backend());
    x.backend().kernels().copy(x, out);
    DType from = x.dtype();
    return Autograd.recordSaving("to_" + dtype.name().toLowerCase(), out, Autograd.NOTHING, g -> new Tensor[] {cast(g, from)}, x);
  }

  // ------------------------------------------------------------- unary math
  public static Tensor neg(Tensor x) {
    return Autograd.recordSaving("neg", unaryRaw(UnaryOp.NEG, x), Autograd.NOTHING, g -> new Tensor[] {neg(g)}, x);
  }

  public static Tensor abs(Tensor x) {
    return Autograd.record("abs", unaryRaw(UnaryOp.ABS, x), g -> new Tensor[] {mul(g, unaryRaw(UnaryOp.SIGN, x))}, x);
  }

  public static Tensor exp(Tensor x) {
    Tensor out = unaryRaw(UnaryOp.EXP, x);
    return Autograd.record("exp", out, g -> new Tensor[] {mul(g, out.detach())}, x);
  }

  public static Tensor log(Tensor x) {
    return Autograd.record("log", unaryRaw(UnaryOp.LOG, x), g -> new Tensor[] {div(g, x)}, x);
  }

  public static Tensor sqrt(Tensor x) {
    Tensor out = unaryRaw(UnaryOp.SQRT, x);
    return Autograd.record("sqrt", out, g -> new Tensor[] {div(mulScalar(g, 0.5), out.detach())}, x);
  }

  public static Tensor rsqrt(Tensor x) {
    Tensor out = unaryRaw(UnaryOp.RSQRT, x);
    // d/dx x^-1/2 = -1/2 x^-3/2 = -1/2 out^3
    return Autograd.record("rsqrt", out, g -> new Tensor[] {mul(g, mulScalar(pow(out.detach(), 3), -0.5))}, x);
  }

  public static Tensor tanh(Tensor x) { return activation("tanh", UnaryOp.TANH, BinaryOp.TANH_BACKWARD, x); }

  public static Tensor sigmoid(Tensor x) { return activation("sigmoid", UnaryOp.SIGMOID, BinaryOp.SIGMOID_BACKWARD, x); }

  public static Tensor relu(Tensor x) { return activation("relu", UnaryOp.RELU, BinaryOp.RELU_BACKWARD, x); }

  /** Exact GELU, x·Φ(x). */
  public static Tensor gelu(Tensor x) { return activation("gelu", UnaryOp.GELU, BinaryOp.GELU_BACKWARD, x); }

  /** GELU with the tanh approximation (GPT-2's "gelu_new"). */
  public static Tensor geluTanh(Tensor x) { return activation("gelu_tanh", UnaryOp.GELU_TANH, BinaryOp.GELU_TANH_BACKWARD, x); }

  public static Tensor silu(Tensor x) { return activation("silu", UnaryOp.SILU, BinaryOp.SILU_BACKWARD, x); }

  public static Tensor erf(Tensor x) {
    // d/dx erf = 2/sqrt(pi) exp(-x^2)
    return Autograd.record("erf", unaryRaw(UnaryOp.ERF, x),
        g -> new Tensor[] {mul(g, mulScalar(exp(neg(mul(x, x))), 1.1283791670955126))}, x);
  }

  public static Tensor square(Tensor x) {
    return Autograd.record("square", unaryRaw(UnaryOp.SQUARE, x), g -> new Tensor[] {mul(g, mulScalar(x, 2))}, x);
  }

  /** An activation whose derivative is a fused backward kernel taking the saved input. */
  private static Tensor activation(String name, UnaryOp op, BinaryOp backward, Tensor x) {
    Tensor out = unaryRaw(op, x);
    return Autograd.recordSaving(name, out, Autograd.saving(x), g -> {
      Tensor gx = OpSupport.emptyLike(g);
      g.backend().kernels().binary(backward, x, g, gx);
      return new Tensor[] {gx};
    }, x);
  }

  /** The kernel alone, no autograd. */
  public static Tensor unaryRaw(UnaryOp op, Tensor x) {
    if (op != UnaryOp.NEG && op != UnaryOp.ABS && op != UnaryOp.SIGN && op != UnaryOp.SQUARE) OpSupport.requireFloating(op.name().toLowerCase(), x);
    Tensor out = OpSupport.emptyLike(x);
    x.backend().kernels().unary(op, x, out);
    return out;
  }
}
