package io.colossal4j.parallel.pipeline;

import io.colossal4j.autograd.Autograd;
import io.colossal4j.tensor.GradFn;
import io.colossal4j.nn.Unit;
import io.colossal4j.nn.UnitModel;
import io.colossal4j.tensor.Rng;
import io.colossal4j.tensor.Storage;
import io.colossal4j.tensor.Tensor;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Measures each unit of a model on a sample micro-batch: forward and backward time (the fastest of
 * {@code repeats} runs after one warm-up, so JIT compilation and first-touch allocation do not count) and the
 * activation bytes its autograd graph holds. Units run one at a time, each on the previous unit's output
 * detached, so a unit's time is its own. The model is left as it was: parameters' gradients are cleared, and
 * buffers (BatchNorm running statistics) and random streams (dropout) are restored after measuring.
 */
public final class UnitProfiler {
  private UnitProfiler() {}

  /**
   * @param sample          one micro-batch of model inputs, on the model's backend
   * @param optimizerStates state tensors the optimizer keeps per parameter (Adam 2, SGD with momentum 1)
   */
  public static List<UnitProfile> profile(UnitModel model, Tensor sample, int optimizerStates, int repeats) {
    if (repeats < 1) throw new IllegalArgumentException("profiling needs at least 1 repeat, got " + repeats);
    List<Unit> units = model.units();
    Map<String, Tensor> buffers = snapshotBuffers(model);
    List<Rng> rngs = model.rngs();
    List<Rng.State> rngStates = rngs.stream().map(Rng::snapshot).toList();
    boolean wasTraining = model.isTraining();
    model.train(true);
    double[] fwd = new double[units.size()], bwd = new double[units.size()];
    java.util.Arrays.fill(fwd, Double.POSITIVE_INFINITY);
    java.util.Arrays.fill(bwd, Double.POSITIVE_INFINITY);
    long[] act = new long[units.size()];
    try {
      for (int r = 0; r <= repeats; r++) runOnce(units, sample, r == 0 ? null : fwd, r == 0 ? null : bwd, act);
    } finally {
      model.zeroGrad();
      model.train(wasTraining);
      restoreBuffers(model, buffers);
      for (int i = 0; i < rngs.size(); i++) rngs.get(i).restore(rngStates.get(i));
    }
    List<UnitProfile> out = new ArrayList<>();
    for (int i = 0; i < units.size(); i++) {
      var m = units.get(i).module();
      long stateBytes = 0;
      for (Tensor p : m.parameters()) stateBytes += p.numel() * p.dtype().byteSize() * (2L + optimizerStates);
      out.add(new UnitProfile(units.get(i).name(), m.parameterCount(), stateBytes, fwd[i], bwd[i], act[i]));
    }
    return out;
  }

  /** One pass over the units; records the minimum times into fwd/bwd when they are non-null (null: warm-up). */
  private static void runOnce(List<Unit> units, Tensor sample, double[] fwd, double[] bwd, long[] act) {
    Tensor h = sample;
    for (int i = 0; i < units.size(); i++) {
      Tensor in = h.dtype().isFloating() ? h.detach().requiresGrad(true) : h.detach();
      long t0 = System.nanoTime();
      Tensor out = units.get(i).module().forward(in);
      long t1 = System.nanoTime();
      act[i] = graphBytes(out, in);
      if (out.requiresGrad()) Autograd.backward(out, Tensor.full(out.shape(), out.dtype(), out.backend(), 1e-3), false);
      long t2 = System.nanoTime();
      if (fwd != null) {
        fwd[i] = Math.min(fwd[i], (t1 - t0) * 1e-9);
        bwd[i] = Math.min(bwd[i], (t2 - t1) * 1e-9);
      }
      h = out.detach();
    }
  }

  /**
   * Bytes of the distinct storages the graph from {@code out} back to {@code in} references: the intermediate
   * tensors backward may read, and the output. Leaves (parameters, the unit's input) are not counted.
   */
  static long graphBytes(Tensor out, Tensor in) {
    Set<Storage> seen = Collections.newSetFromMap(new IdentityHashMap<>());
    seen.add(in.storage());
    long bytes = 0;
    if (seen.add(out.storage())) bytes += out.storage().byteSize();
    ArrayDeque<GradFn> stack = new ArrayDeque<>();
    Set<GradFn> visited = Collections.newSetFromMap(new IdentityHashMap<>());
    if (out.gradFn() != null) stack.push(out.gradFn());
    while (!stack.isEmpty()) {
      GradFn fn = stack.pop();
      if (!visited.add(fn)) continue;
      for (Tensor t : fn.inputs()) {
        if (t == null || t.isLeaf()) continue;
        if (seen.add(t.storage())) bytes += t.storage().byteSize();
        if (t.gradFn() != null) stack.push(t.gradFn());
      }
    }
    return bytes;
  }

  private static Map<String, Tensor> snapshotBuffers(UnitModel model) {
    Map<String, Tensor> params = model.namedParameters(), copies = new java.util.LinkedHashMap<>();
    model.stateDict().forEach((name, t) -> {
      if (params.containsKey(name)) return;
      Tensor c = Tensor.empty(t.shape(), t.dtype(), t.backend());
      t.backend().kernels().copy(t, c);
      copies.put(name, c);
    });
    return copies;
  }

  private static void restoreBuffers(UnitModel model, Map<String, Tensor> copies) {
    Map<String, Tensor> state = model.stateDict();
    copies.forEach((name, c) -> c.backend().kernels().copy(c, state.get(name)));
  }
}
