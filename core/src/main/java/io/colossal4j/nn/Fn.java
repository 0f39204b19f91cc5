package io.colossal4j.nn;

import io.colossal4j.tensor.Tensor;
import java.util.function.UnaryOperator;

/**
 * A named parameter-free operation as a module: flatten, class-token pooling, a permute between layouts.
 * This is how a unit list includes every operation of a forward (the handbook's "missing operators").
 */
public final class Fn extends Module {
  private final String description;
  private final UnaryOperator<Tensor> fn;

  public Fn(String description, UnaryOperator<Tensor> fn) {
    this.description = description;
    this.fn = fn;
  }

  @Override public Tensor forward(Tensor x) { return fn.apply(x); }

  @Override public String toString() { return "Fn(" + description + ")"; }
}
