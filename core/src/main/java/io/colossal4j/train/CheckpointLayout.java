package io.colossal4j.train;

import io.colossal4j.backend.Backend;
import io.colossal4j.distributed.DeviceMesh;
import io.colossal4j.distributed.MeshAxis;
import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.nn.Module;
import io.colossal4j.optim.Optimizer;
import io.colossal4j.parallel.pipeline.PipelineState;
import io.colossal4j.parallel.tensor.Placement;
import io.colossal4j.parallel.tensor.TensorParallelState;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Rng;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.train.checkpoint.Checkpoint;
import io.colossal4j.train.checkpoint.CheckpointException;
import io.colossal4j.train.checkpoint.StateDicts;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * How this rank's share of the training state maps to one single-device checkpoint, for any dp × tp × pp layout.
 *
 * <p>Saving ({@link #gather}): each tp group reassembles its sharded tensors ({@link TensorParallelState}), the
 * pipeline stages send theirs to stage 0 ({@link PipelineState}), and world rank 0 (coordinate 0 on every axis)
 * ends up with the state dict one process would hold: the single-device model's names, shapes and order, so a
 * checkpoint resumes into any layout and PyTorch/timm read it. Optimizer state entries ({@code <param>.<key>}) have
 * their parameter's placement. Data-parallel replicas hold identical state, so only the first replica takes part.
 *
 * <p>Loading ({@link #load}): every rank reads the whole checkpoint, checks it against the single-device model's
 * names, dtypes and shapes (naming every mismatch, before anything is copied) and keeps its own slice: its stage's
 * entries, its tp rank's shard. Random streams are keyed {@code model.<i>} by their index in the full model's
 * {@link Module#rngs()}; a stage saves and restores the streams it runs. Not thread-safe; collective calls must be
 * made by every rank, in the same order.
 */
public final class CheckpointLayout {
  /** The single-device training state, as held by the writing rank. */
  public record State(Map<String, Tensor> model, Map<String, Tensor> optimizer, Map<String, Rng.State> rngs) {}

  private final Module full;
  private final Module local;
  private final Optional<ProcessGroup> world, tp, pp;
  private final boolean firstReplica;
  private final Map<String, Placement> placements;
  private final Map<Rng, Integer> rngIndex = new IdentityHashMap<>();

  private CheckpointLayout(Module full, Module local, Optional<ProcessGroup> world, Optional<ProcessGroup> tp, Optional<ProcessGroup> pp,
                           boolean firstReplica) {
    this.full = full;
    this.local = local;
    this.world = world.filter(g -> g.size() > 1);
    this.tp = tp;
    this.pp = pp;
    this.firstReplica = firstReplica;
    this.placements = TensorParallelState.placements(full);
    List<Rng> streams = full.rngs();
    for (int i = streams.size() - 1; i >= 0; i--) rngIndex.put(streams.get(i), i);   // a shared stream keeps its first index
  }

  /** One process: the model is its own single-device state. */
  public static CheckpointLayout single(Module model) {
    return new CheckpointLayout(model, model, Optional.empty(), Optional.empty(), Optional.empty(), true);
  }

  /**
   * @param full  the whole model with the tensor-parallel plan applied (every unit, this rank's tp shards)
   * @param local what this rank trains: {@code full}, or its pipeline stage (composed from {@code full}'s modules)
   */
  public static CheckpointLayout of(Module full, Module local, Optional<DeviceMesh> mesh) {
    if (mesh.isEmpty()) return single(full);
    DeviceMesh m = mesh.get();
    Optional<ProcessGroup> tp = m.size(MeshAxis.TP) > 1 ? Optional.of(m.group(MeshAxis.TP)) : Optional.empty();
    Optional<ProcessGroup> pp = m.size(MeshAxis.PP) > 1 ? Optional.of(m.group(MeshAxis.PP)) : Optional.empty();
    return new CheckpointLayout(full, local, Optional.of(m.world()), tp, pp, m.coordinate(MeshAxis.DP) == 0);
  }

  /** Whether this rank writes checkpoints (world rank 0; {@link #gather} returns the state there). */
  public boolean writes() { return world.map(g -> g.rank() == 0).orElse(true); }

  /**
   * The single-device state on the writing rank, empty elsewhere. Collective over the tp and pp groups of the
   * first data-parallel replica (other replicas return at once).
   */
  public Optional<State> gather(Optimizer optimizer) {
    if (!firstReplica) return Optional.empty();
    Map<String, Tensor> model = local.stateDict(), opt = optimizer.stateDict();
    if (tp.isPresent()) {
      model = TensorParallelState.gatherAll(model, placements, tp.get());
      opt = TensorParallelState.gatherAll(opt, optimizerPlacements(opt), tp.get());
      if (tp.get().rank() != 0) return Optional.empty();
    }
    Map<String, Tensor> rngs = rngTensors();
    if (pp.isPresent()) {
      model = PipelineState.gatherToFirst(model, pp.get(), backend());
      opt = PipelineState.gatherToFirst(opt, pp.get(), backend());
      rngs = PipelineState.gatherToFirst(rngs, pp.get(), backend());
      if (pp.get().rank() != 0) return Optional.empty();
    }
    Map<String, Rng.State> states = new LinkedHashMap<>();
    for (int i = 0; i < full.rngs().size(); i++) {
      Tensor t = rngs.get("model." + i);
      if (t != null) states.put("model." + i, new Rng.State(t.toLongArray()[0], t.toLongArray()[1]));
    }
    return Optional.of(new State(inModelOrder(model), optimizerInModelOrder(opt), states));
  }

  /**
   * After the writer's save: every rank learns whether it succeeded, and the others throw if it did not, so no
   * rank trains on believing a checkpoint exists. Collective over the world.
   */
  public void agree(boolean saved, long step) {
    if (world.isEmpty()) return;
    Tensor flag = Tensor.of(new double[] {saved ? 1 : 0}, Shape.of(1), DType.F64, backend());
    world.get().broadcast(flag, 0);
    if (flag.item() != 1 && !writes())
      throw new CheckpointException("world rank 0 could not save the checkpoint of step " + step + " (its log names the file and the cause)");
  }

  /**
   * Checks {@code c} against the single-device model and copies this rank's slice of it into the model and the
   * optimizer (with {@code optimizerSteps} as its step count), and the random streams this rank runs.
   *
   * @param what names the checkpoint in error messages, e.g. {@code "checkpoint runs/x/step-000000100 (of model vit_tiny)"}
   */
  public void load(Checkpoint c, Optimizer optimizer, long optimizerSteps, String what) {
    requireFits(c, what);
    int rank = tp.map(ProcessGroup::rank).orElse(0), size = tp.map(ProcessGroup::size).orElse(1);
    List<Tensor> made = new ArrayList<>();   // this rank's shards, copied in and then returned to the allocator
    Map<String, Tensor> mine = new LinkedHashMap<>(), opt = new LinkedHashMap<>();
    for (String name : local.stateDict().keySet()) mine.put(name, slice(name, c.model().get(name), rank, size, made));
    Map<String, Tensor> params = local.namedParameters();
    c.optimizer().forEach((key, t) -> {
      String param = paramOf(key);
      if (params.containsKey(param)) opt.put(key, slice(param, t, rank, size, made));
    });
    local.loadStateDict(mine, true);
    optimizer.loadStateDict(opt, optimizerSteps);
    for (Rng r : local.rngs()) r.restore(c.state().rngs().get("model." + rngIndex.get(r)));
    made.forEach(t -> t.storage().release());
  }

  /** Everything {@link #load} copies is checked first: model entries, optimizer state shapes, this rank's random streams. */
  private void requireFits(Checkpoint c, String what) {
    Map<String, StateDicts.Spec> specs = fullSpecs();
    StateDicts.requireSpecs(specs, c.model(), what);
    List<String> wrong = new ArrayList<>();
    c.optimizer().forEach((key, t) -> {
      StateDicts.Spec spec = specs.get(paramOf(key));
      if (spec == null || !spec.shape().equals(t.shape())) wrong.add(key + " " + t.shape() + (spec == null ? " (no such parameter)" : " (parameter " + spec.shape() + ")"));
    });
    if (!wrong.isEmpty())
      throw new CheckpointException(what + " holds optimizer state that does not fit this model: " + String.join(", ", wrong.subList(0, Math.min(8, wrong.size())))
          + (wrong.size() > 8 ? ", ... (" + (wrong.size() - 8) + " more)" : ""));
    for (Rng r : local.rngs())
      if (!c.state().rngs().containsKey("model." + rngIndex.get(r))) throw new CheckpointException(what + " lacks random stream model." + rngIndex.get(r));
  }

  private static String paramOf(String optimizerKey) { return optimizerKey.substring(0, Math.max(0, optimizerKey.lastIndexOf('.'))); }

  /** The single-device model's entries: names in state-dict order, full (unsharded) shapes. */
  public Map<String, StateDicts.Spec> fullSpecs() {
    int size = tp.map(ProcessGroup::size).orElse(1);
    Map<String, StateDicts.Spec> out = new LinkedHashMap<>();
    full.stateDict().forEach((name, t) -> out.put(name, new StateDicts.Spec(t.dtype(), TensorParallelState.fullShape(t.shape(), placements.get(name), size))));
    return out;
  }

  /** This tp rank's part of a single-device tensor (the tensor itself where the entry is replicated; a new shard, added to {@code made}, else). */
  private Tensor slice(String name, Tensor fullTensor, int rank, int size, List<Tensor> made) {
    return switch (placements.get(name)) {
      case Placement.Replicate r -> fullTensor;
      case Placement.Shard s -> {
        Tensor shard = s.take(fullTensor, rank, size);
        made.add(shard);
        yield shard;
      }
    };
  }

  private Map<String, Placement> optimizerPlacements(Map<String, Tensor> opt) {
    Map<String, Placement> out = new LinkedHashMap<>();
    for (String key : opt.keySet()) {
      Placement p = placements.get(paramOf(key));
      if (p != null) out.put(key, p);
    }
    return out;
  }

  /** This rank's random streams as {@code model.<i>} → i64 [seed, counter]. */
  private Map<String, Tensor> rngTensors() {
    Map<String, Tensor> out = new LinkedHashMap<>();
    for (Rng r : local.rngs()) {
      Rng.State s = r.snapshot();
      out.putIfAbsent("model." + rngIndex.get(r), Tensor.of(new long[] {s.seed(), s.counter()}, Shape.of(2), DType.I64, backend()));
    }
    return out;
  }

  private Map<String, Tensor> inModelOrder(Map<String, Tensor> gathered) {
    Map<String, Tensor> out = new LinkedHashMap<>();
    for (String name : full.stateDict().keySet()) if (gathered.containsKey(name)) out.put(name, gathered.get(name));
    gathered.forEach(out::putIfAbsent);
    return out;
  }

  /** Optimizer entries grouped by parameter in the model's order (each parameter's keys in their saved order). */
  private Map<String, Tensor> optimizerInModelOrder(Map<String, Tensor> gathered) {
    Map<String, List<String>> byParam = new LinkedHashMap<>();
    for (String name : full.stateDict().keySet()) byParam.put(name, new ArrayList<>());
    List<String> rest = new ArrayList<>();
    for (String key : gathered.keySet()) {
      List<String> keys = byParam.get(paramOf(key));
      (keys != null ? keys : rest).add(key);
    }
    Map<String, Tensor> out = new LinkedHashMap<>();
    byParam.values().forEach(keys -> keys.forEach(k -> out.put(k, gathered.get(k))));
    rest.forEach(k -> out.put(k, gathered.get(k)));
    return out;
  }

  private Backend backend() { return full.parameters().getFirst().backend(); }
}
