package io.colossal4j.nn;

import io.colossal4j.ops.Arith;
import io.colossal4j.tensor.Tensor;

/**
 * Typed access to a model's children for the accessors that parallel plans are built from, and the fused forms of
 * the layer pairs transformer blocks are made of (a plain Linear with what follows it), which fall back to the
 * composite for anything else (a tensor-parallel shard, an active dropout, another activation).
 */
public final class Layers {
  private Layers() {}

  /**
   * residual + drop(proj(x)): the residual added inside proj's GEMM ({@link Linear#forwardAdd}) when drop is the
   * identity for this call and proj a plain Linear (a tensor-parallel row shard all-reduces its output, so it adds
   * afterwards).
   */
  public static Tensor projectAdd(Module proj, Dropout drop, Tensor x, Tensor residual) {
    if (drop.isIdentity() && proj instanceof Linear l) return l.forwardAdd(x, residual);
    return Arith.add(residual, drop.forward(proj.forward(x)));
  }

  /** act(fc(x)); a GELU after a plain Linear runs as {@link Linear#forwardGelu} (same values, its backward fused). */
  public static Tensor linearThen(Module fc, Module act, Tensor x) {
    if (fc instanceof Linear lin && act instanceof Activation a && a.geluKind() != null) return lin.forwardGelu(x, a.geluKind());
    return act.forward(fc.forward(x));
  }

  /**
   * Child {@code name} of {@code parent} as a plain {@link Linear}; an error naming it when a plan has
   * replaced it already (plans are built from plain models) or it is something else.
   */
  public static Linear linear(Module parent, String name) {
    Module m = parent.children().get(name);
    if (m instanceof Linear l) return l;
    throw new IllegalStateException("child '" + name + "' of " + parent.getClass().getSimpleName() + " is " + m
        + ", not a plain Linear: parallel plans are built from the plain single-device model");
  }

  /** Child {@code name} as a plain {@link Embedding}, as {@link #linear}. */
  public static Embedding embedding(Module parent, String name) {
    Module m = parent.children().get(name);
    if (m instanceof Embedding e) return e;
    throw new IllegalStateException("child '" + name + "' of " + parent.getClass().getSimpleName() + " is " + m
        + ", not a plain Embedding: parallel plans are built from the plain single-device model");
  }
}
