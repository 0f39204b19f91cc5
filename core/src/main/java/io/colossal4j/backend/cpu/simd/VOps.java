package io.colossal4j.backend.cpu.simd;

import static io.colossal4j.backend.cpu.simd.VMath.S;

import io.colossal4j.backend.BinaryOp;
import io.colossal4j.backend.UnaryOp;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

/**
 * The f32 vector form of each elementwise op that the fast kernels specialise; the same math as
 * {@code ScalarKernels.unary/binary} (within {@link VMath}'s bounds for transcendental functions, exact for
 * +, −, ×, ÷, comparisons, max/min with NaN propagation). Ops missing here (POW, LOG, SIN, COS, FLOOR) run on
 * the reference kernels.
 */
final class VOps {
  private VOps() {}

  private static final float SQRT_2_OVER_PI = 0.7978845608028654f;
  private static final float INV_SQRT_2PI = 0.3989422804014327f;

  static boolean supports(UnaryOp op) {
    return switch (op) {
      case LOG, SIN, COS, FLOOR -> false;
      default -> true;
    };
  }

  static boolean supports(BinaryOp op) { return op != BinaryOp.POW; }

  static FloatVector unary(UnaryOp op, FloatVector x) {
    return switch (op) {
      case NEG -> x.neg();
      case ABS -> x.abs();
      case EXP -> VMath.exp(x);
      case SQRT -> x.sqrt();
      case RSQRT -> FloatVector.broadcast(S, 1f).div(x.sqrt());
      case TANH -> VMath.tanh(x);
      case ERF -> VMath.erf(x);
      case SIGMOID -> sigmoid(x);
      case RELU -> x.blend(0f, x.compare(VectorOperators.LE, 0f));
      case GELU -> x.mul(VMath.normalCdf(x));
      case GELU_TANH -> geluTanh(x);
      case SILU -> x.mul(sigmoid(x));
      case SIGN -> x.blend(1f, x.compare(VectorOperators.GT, 0f)).blend(-1f, x.lt(0f));
      case RECIPROCAL -> FloatVector.broadcast(S, 1f).div(x);
      case SQUARE -> x.mul(x);
      case LOG, SIN, COS, FLOOR -> throw new IllegalStateException(op + " has no vector form");
    };
  }

  static FloatVector binary(BinaryOp op, FloatVector x, FloatVector y) {
    return switch (op) {
      case ADD -> x.add(y);
      case SUB -> x.sub(y);
      case MUL -> x.mul(y);
      case DIV -> x.div(y);
      case MAX -> x.max(y);
      case MIN -> x.min(y);
      case EQ -> ones(x.compare(VectorOperators.EQ, y));
      case NE -> ones(x.compare(VectorOperators.NE, y));
      case LT -> ones(x.compare(VectorOperators.LT, y));
      case LE -> ones(x.compare(VectorOperators.LE, y));
      case GT -> ones(x.compare(VectorOperators.GT, y));
      case GE -> ones(x.compare(VectorOperators.GE, y));
      case RELU_BACKWARD -> y.blend(0f, x.compare(VectorOperators.LE, 0f).or(x.test(VectorOperators.IS_NAN)));
      case GELU_BACKWARD -> geluGrad(x).mul(y);
      case GELU_TANH_BACKWARD -> geluTanhGrad(x).mul(y);
      case SILU_BACKWARD -> { FloatVector s = sigmoid(x); yield s.mul(x.mul(FloatVector.broadcast(S, 1f).sub(s)).add(1f)).mul(y); }
      case SIGMOID_BACKWARD -> { FloatVector s = sigmoid(x); yield s.mul(FloatVector.broadcast(S, 1f).sub(s)).mul(y); }
      case TANH_BACKWARD -> { FloatVector t = VMath.tanh(x); yield VMath.fma(t.neg(), t, 1f).mul(y); }
      case POW -> throw new IllegalStateException("POW has no vector form");
    };
  }

  private static FloatVector ones(jdk.incubator.vector.VectorMask<Float> m) {
    return FloatVector.zero(S).blend(1f, m);
  }

  /** 1/(1 + e^{−x}): e^{−x} overflows to +inf for x < −89 and the quotient is then 0, as it should be. */
  static FloatVector sigmoid(FloatVector x) {
    return FloatVector.broadcast(S, 1f).div(VMath.exp(x.neg()).add(1f));
  }

  /** x·(1 + tanh u)/2 written as x·σ(2u), which keeps relative accuracy where 1 + tanh u would cancel (x &lt; 0). */
  private static FloatVector geluTanh(FloatVector x) {
    FloatVector u = x.mul(x).mul(x).mul(0.044715f).add(x).mul(2 * SQRT_2_OVER_PI);
    return x.mul(sigmoid(u));
  }

  private static FloatVector geluGrad(FloatVector x) {
    FloatVector pdf = VMath.exp(x.mul(x).mul(-0.5f)).mul(INV_SQRT_2PI);
    return x.fma(pdf, VMath.normalCdf(x));
  }

  /** d/dx x·σ(2u) = σ(2u) + x·2σ(2u)(1 − σ(2u))·u'. */
  private static FloatVector geluTanhGrad(FloatVector x) {
    FloatVector x2 = x.mul(x);
    FloatVector s = sigmoid(x2.mul(x).mul(0.044715f).add(x).mul(2 * SQRT_2_OVER_PI));
    FloatVector du = x2.mul(3 * 0.044715f).add(1f).mul(2 * SQRT_2_OVER_PI);
    return x.mul(s).mul(FloatVector.broadcast(S, 1f).sub(s)).mul(du).add(s);
  }
}
