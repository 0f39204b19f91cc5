package io.colossal4j.backend;

/**
 * Elementwise functions of two tensors (already broadcast to the output's shape).
 * The {@code *_BACKWARD} entries fuse an activation's derivative with the incoming gradient:
 * {@code op(x, gy) = f'(x) * gy}.
 */
public enum BinaryOp {
  ADD, SUB, MUL, DIV, POW, MAX, MIN,
  EQ, NE, LT, LE, GT, GE,
  RELU_BACKWARD, GELU_BACKWARD, GELU_TANH_BACKWARD, SILU_BACKWARD, SIGMOID_BACKWARD, TANH_BACKWARD;

  public boolean isComparison() { return this.ordinal() >= EQ.ordinal() && this.ordinal() <= GE.ordinal(); }
}
