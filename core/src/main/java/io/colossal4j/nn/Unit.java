package io.colossal4j.nn;

/**
 * One step of a model's forward: a named module taking one tensor to one tensor. {@code name} is the
 * dotted name users split on ({@code blocks.3}, {@code layer1.0}); {@code prefix} is what the module's
 * parameter names are prefixed with in the model's state dict ({@code "blocks.3."}, or {@code ""} for a unit
 * whose parameters live at the model's top level). Running a model's units in order is its forward, exactly.
 */
public record Unit(String name, String prefix, Module module) {
  public Unit {
    if (name.isEmpty()) throw new IllegalArgumentException("a unit needs a name");
  }
}
