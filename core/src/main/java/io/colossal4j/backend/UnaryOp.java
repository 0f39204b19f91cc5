package io.colossal4j.backend;

/** Elementwise functions of one tensor. */
public enum UnaryOp {
  NEG, ABS, EXP, LOG, SQRT, RSQRT, TANH, ERF, SIGMOID, RELU, GELU, GELU_TANH, SILU, SIGN, RECIPROCAL, SQUARE, SIN, COS, FLOOR
}
