package io.colossal4j.nn;

import io.colossal4j.ops.Arith;
import io.colossal4j.ops.LinAlg;
import io.colossal4j.tensor.Tensor;

/** Parameter-free activations as modules. */
public final class Activation extends Module {
  /** The activation functions available as layers. */
  public enum Kind { RELU, GELU, GELU_TANH, SILU, TANH, SIGMOID, IDENTITY }

  private final Kind kind;

  public Activation(Kind kind) { this.kind = kind; }

  public static Activation gelu() { return new Activation(Kind.GELU); }

  public static Activation relu() { return new Activation(Kind.RELU); }

  public static Activation identity() { return new Activation(Kind.IDENTITY); }

  public Kind kind() { return kind; }

  /** The GELU this activation is, for {@link Linear#forwardGelu}; null when it is not a GELU. */
  public LinAlg.Gelu geluKind() {
    return switch (kind) {
      case GELU -> LinAlg.Gelu.EXACT;
      case GELU_TANH -> LinAlg.Gelu.TANH;
      case RELU, SILU, TANH, SIGMOID, IDENTITY -> null;
    };
  }

  @Override public Tensor forward(Tensor x) {
    return switch (kind) {
      case RELU -> Arith.relu(x);
      case GELU -> Arith.gelu(x);
      case GELU_TANH -> Arith.geluTanh(x);
      case SILU -> Arith.silu(x);
      case TANH -> Arith.tanh(x);
      case SIGMOID -> Arith.sigmoid(x);
      case IDENTITY -> x;
    };
  }

  @Override public String toString() { return kind.name().toLowerCase(); }
}
