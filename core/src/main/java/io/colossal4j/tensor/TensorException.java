package io.colossal4j.tensor;

/** Bad input to a tensor operation: the message names the op, the shapes or values, and what would be valid. */
public class TensorException extends RuntimeException {
  public TensorException(String message) { super(message); }
}
