package io.colossal4j.nn;

/** Typed access to a model's children for the accessors that parallel plans are built from. */
public final class Layers {
  private Layers() {}

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
