package io.colossal4j.backend.cpu.simd;

import static io.colossal4j.backend.cpu.simd.VMath.S;

import io.colossal4j.backend.BinaryOp;
import io.colossal4j.backend.UnaryOp;
import jdk.incubator.vector.FloatVector;

/**
 * The f32 vector forms of the activations and their derivatives: the same math as
 * {@code ScalarKernels.unary/binary}, within {@link VMath}'s bounds. The cheap ops (+, −, ×, ÷, comparisons,
 * max/min, relu, abs, ...) are written inline in {@link Elementwise}'s loops; ops absent from both (POW, LOG,
 * SIN, COS, FLOOR) run on the reference kernels.
 */
final class VOps {
  private VOps() {}

  private static final float SQRT_2_OVER_PI = 0.7978845608028654f;

  /** Unary ops computed by {@link Elementwise}'s inline switch. */
  static boolean cheap(UnaryOp op) {
    return switch (op) {
      case NEG, ABS, SQRT, RSQRT, RELU, SIGN, RECIPROCAL, SQUARE -> true;
      default -> false;
    };
  }

  /** Binary ops computed by {@link Elementwise}'s inline switch. */
  static boolean cheap(BinaryOp op) {
    return switch (op) {
      case ADD, SUB, MUL, DIV, MAX, MIN, EQ, NE, LT, LE, GT, GE, RELU_BACKWARD -> true;
      default -> false;
    };
  }

  /** 1/(1 + e^{−x}): e^{−x} overflows to +inf for x < −89 and the quotient is then 0, as it should be. */
  static FloatVector sigmoid(FloatVector x) {
    return FloatVector.broadcast(S, 1f).div(VMath.exp(x.neg()).add(1f));
  }

  /** x·(1 + tanh u)/2 written as x·σ(2u), which keeps relative accuracy where 1 + tanh u would cancel (x &lt; 0). */
  static FloatVector geluTanh(FloatVector x) {
    FloatVector u = x.mul(x).mul(x).mul(0.044715f).add(x).mul(2 * SQRT_2_OVER_PI);
    return x.mul(sigmoid(u));
  }

  /** d/dx x·σ(2u) = σ(2u) + x·2σ(2u)(1 − σ(2u))·u'. */
  static FloatVector geluTanhGrad(FloatVector x) {
    FloatVector x2 = x.mul(x);
    FloatVector s = sigmoid(x2.mul(x).mul(0.044715f).add(x).mul(2 * SQRT_2_OVER_PI));
    FloatVector du = x2.mul(3 * 0.044715f).add(1f).mul(2 * SQRT_2_OVER_PI);
    return x.mul(s).mul(FloatVector.broadcast(S, 1f).sub(s)).mul(du).add(s);
  }

  /** σ(x)·(1 + x·(1 − σ(x))). */
  static FloatVector siluGrad(FloatVector x) {
    FloatVector s = sigmoid(x);
    return s.mul(x.mul(FloatVector.broadcast(S, 1f).sub(s)).add(1f));
  }

  static FloatVector sigmoidGrad(FloatVector x) {
    FloatVector s = sigmoid(x);
    return s.mul(FloatVector.broadcast(S, 1f).sub(s));
  }

  static FloatVector tanhGrad(FloatVector x) {
    FloatVector t = VMath.tanh(x);
    return VMath.fma(t.neg(), t, 1f);
  }
}
