package io.colossal4j.nn;

import io.colossal4j.tensor.MemoryCategory;
import io.colossal4j.tensor.Rng;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A model component with named parameters, buffers and children, addressed by dotted names exactly as
 * PyTorch/timm name them ({@code blocks.0.attn.qkv.weight}), so state dicts move between the two.
 *
 * <p>Model code is single-device math: a module never mentions ranks or placement. Parallel plans replace
 * or wrap children from outside through {@link #replaceChild}. A module computes {@code forward(Tensor)};
 * modules with other signatures expose typed methods of their own.
 */
public abstract class Module {
  private final Map<String, Tensor> parameters = new LinkedHashMap<>();
  private final Map<String, Tensor> buffers = new LinkedHashMap<>();
  private final Map<String, Module> children = new LinkedHashMap<>();
  private final java.util.Set<String> inlined = new java.util.HashSet<>();
  private final List<Rng> rngs = new ArrayList<>();
  private boolean training = true;

  /** The module's computation on one tensor. */
  public abstract Tensor forward(Tensor x);

  // ------------------------------------------------------------- registration (for subclasses)
  /** Registers a trainable parameter (marked requiresGrad) under {@code name}. */
  protected final Tensor parameter(String name, Tensor t) {
    checkName(name);
    t.requiresGrad(true);
    parameters.put(name, t);
    return t;
  }

  /** Registers a persistent buffer (e.g. running statistics): saved in the state dict, not trained. */
  protected final Tensor buffer(String name, Tensor t) {
    checkName(name);
    buffers.put(name, t);
    return t;
  }

  protected final <M extends Module> M child(String name, M m) {
    checkName(name);
    children.put(name, m);
    return m;
  }

  /**
   * Registers a child whose members are named without its own name: used for a unit of a model's forward
   * that owns parameters living at the model's level in PyTorch's naming (ViT's cls_token and pos_embed).
   */
  protected final <M extends Module> M inlineChild(String name, M m) {
    child(name, m);
    inlined.add(name);
    return m;
  }

  /** Registers a random stream used at run time (dropout); activation checkpointing restores these. */
  protected final Rng rng(Rng r) {
    rngs.add(r);
    return r;
  }

  private void checkName(String name) {
    if (name.isEmpty() || name.contains("."))
      throw new IllegalArgumentException("module member names must be non-empty and dot-free, got '" + name + "'");
    if (parameters.containsKey(name) || buffers.containsKey(name) || children.containsKey(name))
      throw new IllegalArgumentException("'" + name + "' is registered twice in " + getClass().getSimpleName());
  }

  // ------------------------------------------------------------- traversal
  public final Map<String, Module> children() { return java.util.Collections.unmodifiableMap(children); }

  /** Replaces a registered child (used by parallel plans), keeping its position in the order. */
  public final void replaceChild(String name, Module replacement) {
    if (!children.containsKey(name)) throw new IllegalArgumentException("no child '" + name + "' in " + getClass().getSimpleName() + "; children: " + children.keySet());
    children.put(name, replacement);
    onChildReplaced(name, replacement);
  }

  /** Subclasses holding a child in a field update it here. */
  protected void onChildReplaced(String name, Module replacement) {}

  /** All parameters under dotted names, in registration order (depth first). */
  public final Map<String, Tensor> namedParameters() {
    Map<String, Tensor> out = new LinkedHashMap<>();
    collect("", out, true, false);
    return out;
  }

  public final List<Tensor> parameters() { return new ArrayList<>(namedParameters().values()); }

  /** Parameters and persistent buffers under dotted names: what a checkpoint saves. */
  public final Map<String, Tensor> stateDict() {
    Map<String, Tensor> out = new LinkedHashMap<>();
    collect("", out, true, true);
    return out;
  }

  private void collect(String prefix, Map<String, Tensor> out, boolean params, boolean bufs) {
    if (params) parameters.forEach((k, v) -> out.put(prefix + k, v));
    if (bufs) buffers.forEach((k, v) -> out.put(prefix + k, v));
    children.forEach((k, m) -> m.collect(inlined.contains(k) ? prefix : prefix + k + ".", out, params, bufs));
  }

  /** The prefix this module puts before a child's member names ("" for inlined children). */
  public final String memberPrefix(String childName) {
    return inlined.contains(childName) ? "" : childName + ".";
  }

  /** Every module of the subtree under its dotted name ("" for this one). */
  public final Map<String, Module> namedModules() {
    Map<String, Module> out = new LinkedHashMap<>();
    out.put("", this);
    children.forEach((k, m) -> m.namedModules().forEach((n, sub) -> out.put(n.isEmpty() ? k : k + "." + n, sub)));
    return out;
  }

  /** The run-time random streams of the subtree. */
  public final List<Rng> rngs() {
    List<Rng> out = new ArrayList<>(rngs);
    children.values().forEach(m -> out.addAll(m.rngs()));
    return out;
  }

  public final long parameterCount() {
    long n = 0;
    for (Tensor t : namedParameters().values()) n += t.numel();
    return n;
  }

  // ------------------------------------------------------------- modes
  public final boolean isTraining() { return training; }

  public final Module train(boolean on) {
    training = on;
    children.values().forEach(m -> m.train(on));
    return this;
  }

  public final Module eval() { return train(false); }

  // ------------------------------------------------------------- state
  /**
   * Copies values from {@code state} into this module's parameters and buffers (same names, shapes).
   * Every mismatch is collected and reported at once, naming the parameters, before anything is copied.
   */
  public final void loadStateDict(Map<String, Tensor> state, boolean strict) {
    Map<String, Tensor> mine = stateDict();
    List<String> problems = new ArrayList<>();
    for (var e : mine.entrySet()) {
      Tensor src = state.get(e.getKey());
      if (src == null) { if (strict) problems.add("missing: " + e.getKey() + " " + e.getValue().shape()); continue; }
      if (!src.shape().equals(e.getValue().shape()))
        problems.add("shape of " + e.getKey() + ": checkpoint " + src.shape() + ", model " + e.getValue().shape());
    }
    if (strict) for (String k : state.keySet()) if (!mine.containsKey(k)) problems.add("unexpected: " + k);
    if (!problems.isEmpty())
      throw new TensorException("state dict does not match " + getClass().getSimpleName() + " (" + problems.size() + " problems):\n  "
          + String.join("\n  ", problems.subList(0, Math.min(20, problems.size()))) + (problems.size() > 20 ? "\n  ..." : ""));
    for (var e : mine.entrySet()) {
      Tensor src = state.get(e.getKey());
      if (src != null) e.getValue().backend().kernels().copy(src.backend() == e.getValue().backend() ? src : toBackendOf(src, e.getValue()), e.getValue());
    }
  }

  private static Tensor toBackendOf(Tensor src, Tensor like) {
    Tensor t = Tensor.empty(src.shape(), src.dtype(), like.backend(), MemoryCategory.TEMPORARY);
    try (var arena = java.lang.foreign.Arena.ofConfined()) {
      var host = arena.allocate(Math.max(1, src.numel()) * src.dtype().byteSize(), 8);
      src.backend().copyToHost(src, host);
      like.backend().copyFromHost(host, t);
    }
    return t;
  }

  /** Sets every parameter's gradient to null (the next backward allocates or a hook supplies a buffer). */
  public final void zeroGrad() {
    for (Tensor p : namedParameters().values()) p.setGrad(null);
  }

  @Override public String toString() {
    return getClass().getSimpleName() + "(" + parameterCount() + " parameters)";
  }
}
