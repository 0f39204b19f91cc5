package io.colossal4j.parallel.tensor;

import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.nn.Module;
import io.colossal4j.ops.OpSupport;
import io.colossal4j.optim.GradClip;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BiConsumer;

/**
 * A tensor-parallel model's parameters seen as the single-device model's: where each one lives
 * ({@link #placements}), the full state dict gathered from the tp ranks ({@link #gather}, for checkpoints and
 * for comparing with a single process), a full state dict sliced into the model ({@link #load}, to resume
 * with another tp size), and the gradient norm's share for clipping ({@link #gradSquaredNorm}).
 *
 * <p>Names are the single-device model's dotted names: parallel layers keep their parameters' local names.
 * Collective methods must be called by every rank of the tp group, in the same order.
 */
public final class TensorParallelState {
  private TensorParallelState() {}

  /** Every state-dict entry of {@code model} (parameters and buffers) with how it is laid out over tp, in state-dict order. */
  public static Map<String, Placement> placements(Module model) {
    Map<String, Placement.Shard> sharded = new LinkedHashMap<>();
    walk(model, "", (prefix, m) -> {
      if (m instanceof TensorParallelModule t) t.shardedParameters().forEach((local, s) -> sharded.put(prefix + local, s));
    });
    Map<String, Placement> out = new LinkedHashMap<>();
    for (String name : model.stateDict().keySet()) out.put(name, sharded.containsKey(name) ? sharded.get(name) : new Placement.Replicate());
    return out;
  }

  /**
   * The single-device state dict (names and full shapes) of a model sharded over {@code tp}: sharded entries
   * are all-gathered and reassembled, replicated ones copied. Collective: every rank gets the whole dict.
   */
  public static Map<String, Tensor> gather(Module model, ProcessGroup tp) {
    requireGroupSize(model, tp);
    return gatherAll(model.stateDict(), placements(model), tp);
  }

  /**
   * The parameters' gradients as the single-device model's would be laid out (zeros where a parameter has
   * none yet), for comparing a tp run's gradients with a single process's. Collective, as {@link #gather}.
   */
  public static Map<String, Tensor> gatherGradients(Module model, ProcessGroup tp) {
    requireGroupSize(model, tp);
    Map<String, Tensor> grads = new LinkedHashMap<>();
    model.namedParameters().forEach((n, p) -> grads.put(n, p.grad() != null ? p.grad() : Tensor.zeros(p.shape(), p.dtype(), p.backend())));
    return gatherAll(grads, placements(model), tp);
  }

  /**
   * Reassembles the full tensors of {@code local} (every rank's entries with the same names and shapes, in the
   * same order), each laid out over {@code tp} as {@code placements} says; a name without a placement is
   * replicated. Used for optimizer state, which has its parameter's placement. Collective over {@code tp}.
   */
  public static Map<String, Tensor> gatherAll(Map<String, Tensor> local, Map<String, Placement> placements, ProcessGroup tp) {
    Map<String, Tensor> out = new LinkedHashMap<>();
    local.forEach((name, t) -> out.put(name, switch (placements.getOrDefault(name, new Placement.Replicate())) {
      case Placement.Replicate r -> TpComm.contiguousCopy(t.detach());
      case Placement.Shard s -> {
        Tensor all = OpSupport.empty(Shape.of((int) t.numel() * tp.size()), t.dtype(), t.backend());
        tp.allGather(all, TpComm.contiguousCopy(t.detach()));
        yield s.assemble(all, fullShape(t.shape(), s, tp.size()), tp.size());
      }
    }));
    return out;
  }

  /**
   * Copies a single-device state dict into a model sharded over {@code tp}: each sharded entry gets this
   * rank's slice, replicated ones the whole tensor. Strict: missing or unexpected names and wrong shapes are
   * all reported at once, before anything is copied. No communication.
   */
  public static void load(Module model, Map<String, Tensor> full, ProcessGroup tp) {
    requireGroupSize(model, tp);
    Map<String, Tensor> local = model.stateDict();
    Map<String, Placement> placements = placements(model);
    List<String> problems = new ArrayList<>();
    placements.forEach((name, placement) -> {
      Tensor src = full.get(name);
      Shape want = placement instanceof Placement.Shard s ? fullShape(local.get(name).shape(), s, tp.size()) : local.get(name).shape();
      if (src == null) problems.add("missing: " + name + " " + want);
      else if (!src.shape().equals(want)) problems.add("shape of " + name + ": state dict " + src.shape() + ", single-device model " + want);
    });
    for (String name : full.keySet()) if (!placements.containsKey(name)) problems.add("unexpected: " + name);
    if (!problems.isEmpty())
      throw new TensorException("state dict does not match the tp=" + tp.size() + " model (" + problems.size() + " problems):\n  " + String.join("\n  ", problems));
    Map<String, Tensor> slices = new LinkedHashMap<>();
    placements.forEach((name, placement) -> slices.put(name, switch (placement) {
      case Placement.Replicate r -> full.get(name);
      case Placement.Shard s -> s.take(full.get(name), tp.rank(), tp.size());
    }));
    model.loadStateDict(slices, true);
  }

  /**
   * This tp group's share of the global squared gradient norm: Σ‖g‖² over the parameters, counting each
   * replicated parameter once (its gradient is identical on every tp rank, see {@link TensorPlan}) and
   * summing sharded ones over the tp ranks. Collective over {@code tp}; every rank returns the same value,
   * which equals the single-device model's Σ‖g‖² up to rounding. Callers add the shares of pipeline stages.
   */
  public static double gradSquaredNorm(ProcessGroup tp, Module model) {
    requireGroupSize(model, tp);
    Map<String, Placement> placements = placements(model);
    List<Tensor> replicated = new ArrayList<>(), sharded = new ArrayList<>();
    Tensor anchor = null;
    for (var e : model.namedParameters().entrySet()) {
      (placements.get(e.getKey()) instanceof Placement.Shard ? sharded : replicated).add(e.getValue());
      anchor = e.getValue();
    }
    if (anchor == null) return 0;
    double mine = GradClip.sumOfSquares(sharded);
    if (tp.size() > 1) {
      Tensor s = Tensor.of(new double[] {mine}, Shape.of(1), DType.F64, anchor.backend());
      tp.allReduce(s, io.colossal4j.distributed.Reduction.SUM);
      mine = s.item();
    }
    return GradClip.sumOfSquares(replicated) + mine;
  }

  /** The model's parallel layers must have been built over a group of tp's size (else shapes would be misread). */
  private static void requireGroupSize(Module model, ProcessGroup tp) {
    walk(model, "", (prefix, m) -> {
      if (m instanceof TensorParallelModule t && t.group().size() != tp.size())
        throw new IllegalArgumentException("layer " + prefix.substring(0, Math.max(0, prefix.length() - 1)) + " is sharded over " + t.group().size() + " ranks (group " + t.group().name()
            + ") but tp group " + tp.name() + " has " + tp.size());
    });
  }

  private static Shape fullShape(Shape local, Placement.Shard s, int size) {
    return local.with(s.dim(), local.dim(s.dim()) * size);
  }

  /** The single-device shape of an entry whose tp rank holds {@code local}, laid out as {@code placement} over {@code size} ranks. */
  public static Shape fullShape(Shape local, Placement placement, int size) {
    return switch (placement) {
      case Placement.Replicate r -> local;
      case Placement.Shard s -> fullShape(local, s, size);
    };
  }

  /** Visits every module with the prefix its parameters carry in the state dict (inlined children add none). */
  private static void walk(Module m, String prefix, BiConsumer<String, Module> visit) {
    visit.accept(prefix, m);
    m.children().forEach((k, c) -> walk(c, prefix + m.memberPrefix(k), visit));
  }
}
