package io.colossal4j.optim;

import io.colossal4j.autograd.GradMode;
import io.colossal4j.tensor.Tensor;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Base of the optimizers: parameter groups, a step counter and per-parameter state tensors keyed by the
 * parameter's dotted name (so optimizer state checkpoints alongside the model and survives re-layouts).
 * The learning rate is an argument of {@link #step}: schedules are pure functions of the step, owned by
 * the trainer. Parameters without a gradient are skipped (as PyTorch).
 */
public abstract class Optimizer {
  protected final List<ParamGroup> groups;
  protected final Map<String, Map<String, Tensor>> state = new LinkedHashMap<>();
  private long steps;

  protected Optimizer(List<ParamGroup> groups) {
    if (groups.isEmpty()) throw new IllegalArgumentException("an optimizer needs at least one parameter group");
    java.util.Set<String> seen = new java.util.HashSet<>();
    for (ParamGroup g : groups)
      for (String n : g.params().keySet())
        if (!seen.add(n)) throw new IllegalArgumentException("parameter " + n + " is in two groups");
    this.groups = List.copyOf(groups);
  }

  /** Applies one update with base learning rate {@code lr}. */
  public final void step(double lr) {
    if (!(lr >= 0) || Double.isInfinite(lr)) throw new IllegalArgumentException("learning rate must be finite and >= 0, got " + lr);
    steps++;
    GradMode.noGrad(() -> {
      for (ParamGroup g : groups) {
        List<Entry> entries = new java.util.ArrayList<>(g.params().size());
        g.params().forEach((name, p) -> {
          Tensor grad = p.grad();
          if (grad != null) entries.add(new Entry(name, p, grad));
        });
        updateGroup(entries, lr * g.lrScale(), g.weightDecay(), steps);
      }
    });
  }

  /** A parameter with its gradient, as {@link #updateGroup} receives them. */
  protected record Entry(String name, Tensor param, Tensor grad) {}

  /**
   * The update of one group's parameters that have a gradient, in the group's order; by default one
   * {@link #update} each. Optimizers with a multi-tensor kernel override it to update many parameters per call.
   */
  protected void updateGroup(List<Entry> entries, double lr, double weightDecay, long step) {
    for (Entry e : entries) update(e.name(), e.param(), e.grad(), lr, weightDecay, step);
  }

  /** One parameter's update; {@code step} counts from 1. */
  protected abstract void update(String name, Tensor p, Tensor g, double lr, double weightDecay, long step);

  /** The named state tensor of a parameter, created as zeros on first use. */
  protected final Tensor stateOf(String param, String key, Tensor like) {
    return state.computeIfAbsent(param, k -> new LinkedHashMap<>()).computeIfAbsent(key, k -> InPlace.zerosLike(like));
  }

  protected final boolean hasState(String param, String key) {
    var m = state.get(param);
    return m != null && m.containsKey(key);
  }

  public final long steps() { return steps; }

  public final List<ParamGroup> groups() { return groups; }

  /**
   * Zeroes gradients, keeping their memory for the next step (a parameter that never received a gradient
   * keeps none, and is skipped by {@link #step}). Lazily ({@link Tensor#zeroGradLazily}): the next backward
   * overwrites instead of adding, so zeroing costs no pass over the gradients.
   */
  public final void zeroGrad() {
    for (ParamGroup g : groups)
      for (Tensor p : g.params().values()) p.zeroGradLazily();
  }

  /**
   * PyTorch's {@code zero_grad(set_to_none=True)}: releases the gradients autograd allocated, so no gradient
   * memory is held until the next backward allocates it again (a single-device step then peaks without them,
   * as PyTorch's does); gradients installed by someone else (data parallelism's bucket views) are zeroed lazily
   * as by {@link #zeroGrad}, their owner keeps the memory. See {@link Tensor#releaseGrad}.
   */
  public final void releaseGrads() {
    for (ParamGroup g : groups)
      for (Tensor p : g.params().values()) p.releaseGrad();
  }

  /** State tensors as {@code <param>.<key>} → tensor, for checkpoints. */
  public final Map<String, Tensor> stateDict() {
    Map<String, Tensor> out = new LinkedHashMap<>();
    state.forEach((p, m) -> m.forEach((k, t) -> out.put(p + "." + k, t)));
    return out;
  }

  /** Restores what {@link #stateDict} saved, with the step count. */
  public final void loadStateDict(Map<String, Tensor> saved, long stepCount) {
    Map<String, Tensor> params = new LinkedHashMap<>();
    for (ParamGroup g : groups) params.putAll(g.params());
    state.clear();
    for (var e : saved.entrySet()) {
      String key = e.getKey();
      int dot = key.lastIndexOf('.');
      String param = dot < 0 ? "" : key.substring(0, dot);
      Tensor p = params.get(param);
      if (p == null) throw new IllegalArgumentException("optimizer state for unknown parameter '" + param + "' (key " + key + ")");
      if (!p.shape().equals(e.getValue().shape()))
        throw new IllegalArgumentException("optimizer state " + key + " has shape " + e.getValue().shape() + ", parameter has " + p.shape());
      Tensor t = InPlace.zerosLike(p);
      p.backend().kernels().copy(e.getValue(), t);
      state.computeIfAbsent(param, k -> new LinkedHashMap<>()).put(key.substring(dot + 1), t);
    }
    this.steps = stepCount;
  }
}
