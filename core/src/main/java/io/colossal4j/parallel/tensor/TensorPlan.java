package io.colossal4j.parallel.tensor;

import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.nn.Embedding;
import io.colossal4j.nn.Linear;
import io.colossal4j.nn.Module;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * Which layers of a plain single-device model become tensor-parallel (1D, Megatron) and how: data, built
 * from the model's typed accessors, validated when built, applied from outside by replacing children.
 * Model code never changes.
 *
 * <pre>{@code
 * var plan = TensorPlan.builder(vit, 2);
 * for (Block b : vit.blocks())
 *   plan.columnwiseHeads(b.attn().qkv(), b.attn().heads()).rowwise(b.attn().proj()).columnwise(b.mlp().fc1()).rowwise(b.mlp().fc2());
 * plan.build().apply(vit, tpGroup);
 * }</pre>
 *
 * <p>Why the layers that are not planned (norms, patch and position embeddings, class token, heads left
 * whole, biases of row-parallel layers) stay identical on all tp ranks without any synchronisation: every
 * rank builds the model from the same seed, so they start equal; a plan pairs each column-parallel layer
 * with a row-parallel one (or a vocab-parallel embedding with its all-reduce), so every activation outside
 * those pairs is the output of an all-reduce (bit-identical on every member by the ProcessGroup contract)
 * or is computed from such outputs by the same ops on every rank; the gradients flowing back into that
 * region are all-reduced by {@link TpComm#copyToRegion}'s backward. Equal values, equal gradients and the
 * same optimizer step keep them equal, step after step. (Dropout inside a sharded region is the exception:
 * ranks draw masks from the same stream for different slices, so it is not equivalent to a single device;
 * equivalence holds with dropout 0 inside the region, as in the equivalence tests.)
 *
 * <p>Immutable and thread-safe once built; {@link #apply} mutates the model it is given.
 */
public final class TensorPlan {
  /** One planned layer, with its name as its parameters are named in the state dict ({@code blocks.0.attn.qkv}). */
  public sealed interface Entry {
    String name();

    Module layer();
  }

  /** Output features divided over tp; {@code blocks} = 3 for a fused q/k/v projection (see {@link Placement.Shard}). */
  public record Columnwise(String name, Linear layer, int blocks, ColumnParallelLinear.Output output) implements Entry {}

  /** Input features divided over tp; the output is all-reduced, the bias added once. */
  public record Rowwise(String name, Linear layer, RowParallelLinear.Input input) implements Entry {}

  /** Vocabulary rows divided over tp. */
  public record Vocabwise(String name, Embedding layer) implements Entry {}

  private final int tp;
  private final List<Entry> entries;

  private TensorPlan(int tp, List<Entry> entries) {
    this.tp = tp;
    this.entries = List.copyOf(entries);
  }

  /** A builder for a plan over {@code tp} ranks of {@code model}'s layers (the model only names them in messages). */
  public static Builder builder(Module model, int tp) { return new Builder(model, tp); }

  public int tp() { return tp; }

  public List<Entry> entries() { return entries; }

  /**
   * Replaces every planned layer of {@code model} (the model the plan was built from, still plain) by its
   * parallel form over {@code group}, each taking this rank's slice of the layer's current weights, so a tp
   * run starts from exactly the weights a single process would have. Returns the model.
   */
  public <M extends Module> M apply(M model, ProcessGroup group) {
    if (group.size() != tp)
      throw new IllegalArgumentException("plan is for tp = " + tp + " but group " + group.name() + " has " + group.size() + " ranks");
    Map<Module, Parent> parents = new IdentityHashMap<>();
    for (Module m : model.namedModules().values()) m.children().forEach((k, c) -> parents.putIfAbsent(c, new Parent(m, k)));
    for (Entry e : entries) {
      Parent p = parents.get(e.layer());
      if (p == null)
        throw new IllegalStateException("layer " + e.name() + " of the plan is not in this model (was the plan built for another model, or applied already?)");
      p.module().replaceChild(p.child(), parallel(e, group));
    }
    return model;
  }

  private record Parent(Module module, String child) {}

  private static Module parallel(Entry e, ProcessGroup group) {
    return switch (e) {
      case Columnwise c -> new ColumnParallelLinear(c.layer(), group, c.blocks(), c.output());
      case Rowwise r -> new RowParallelLinear(r.layer(), group, r.input());
      case Vocabwise v -> new VocabParallelEmbedding(v.layer(), group);
    };
  }

  @Override public String toString() { return "TensorPlan(tp=" + tp + ", " + entries.size() + " layers)"; }

  /** Collects entries in order; {@link #build} validates them all and reports every problem at once. */
  public static final class Builder {
    private final int tp;
    private final Map<Module, String> names = new IdentityHashMap<>();
    private final List<Entry> entries = new ArrayList<>();
    private final List<String> problems = new ArrayList<>();

    private Builder(Module model, int tp) {
      if (tp < 1) throw new IllegalArgumentException("tensor-parallel size must be >= 1, got tp = " + tp);
      this.tp = tp;
      nameModules(model, "");
    }

    /** Names each module as its parameters are named in the state dict ({@code transformer.wte}), without the trailing dot. */
    private void nameModules(Module m, String prefix) {
      names.putIfAbsent(m, prefix.endsWith(".") ? prefix.substring(0, prefix.length() - 1) : prefix);
      m.children().forEach((k, c) -> nameModules(c, prefix + m.memberPrefix(k)));
    }

    /** Output features split over tp; the output stays sharded (the input of a {@link #rowwise} layer). */
    public Builder columnwise(Linear layer) { return columnwise(layer, ColumnParallelLinear.Output.SHARDED); }

    public Builder columnwise(Linear layer, ColumnParallelLinear.Output output) {
      String n = name(layer);
      divisible(n, "out features", layer.outFeatures(), tp);
      return add(new Columnwise(n, layer, 1, output));
    }

    /**
     * A fused q/k/v projection [3·heads·headDim, dim] laid out q-heads, k-heads, v-heads: each rank keeps
     * heads/tp heads of each, so attention reads its heads from the shard unchanged. Output stays sharded.
     */
    public Builder columnwiseHeads(Linear qkv, int heads) {
      String n = name(qkv);
      if (heads < 1 || qkv.outFeatures() % (3 * heads) != 0)
        problems.add(n + ": out features = " + qkv.outFeatures() + " is not 3 × heads × head dim for heads = " + heads);
      else divisible(n, "heads", heads, tp);
      return add(new Columnwise(n, qkv, 3, ColumnParallelLinear.Output.SHARDED));
    }

    /** Input features split over tp; the input arrives sharded (the output of a {@link #columnwise} layer). */
    public Builder rowwise(Linear layer) { return rowwise(layer, RowParallelLinear.Input.SHARDED); }

    public Builder rowwise(Linear layer, RowParallelLinear.Input input) {
      String n = name(layer);
      divisible(n, "in features", layer.inFeatures(), tp);
      return add(new Rowwise(n, layer, input));
    }

    /** Vocabulary rows split over tp. */
    public Builder vocabwise(Embedding embedding) {
      String n = name(embedding);
      divisible(n, "vocabulary size", embedding.weight().size(0), tp);
      return add(new Vocabwise(n, embedding));
    }

    /** The plan, or an {@link IllegalArgumentException} listing every problem (layers planned twice, sizes not divisible by tp). */
    public TensorPlan build() {
      if (!problems.isEmpty())
        throw new IllegalArgumentException("tensor plan for tp = " + tp + " is invalid (" + problems.size() + " problem" + (problems.size() > 1 ? "s" : "") + "):\n  "
            + String.join("\n  ", problems));
      return new TensorPlan(tp, entries);
    }

    private Builder add(Entry e) {
      for (Entry other : entries)
        if (other.layer() == e.layer())
          problems.add(e.name() + ": planned twice (" + kind(other) + ", then " + kind(e) + ")");
      entries.add(e);
      return this;
    }

    private String name(Module layer) {
      String n = names.get(layer);
      if (n == null || n.isEmpty()) throw new IllegalArgumentException("layer " + layer + " is not a layer of the model this plan is built for");
      return n;
    }

    private void divisible(String name, String what, int size, int tp) {
      if (size % tp != 0) problems.add(name + ": " + what + " = " + size + " is not divisible by tp = " + tp);
    }

    private static String kind(Entry e) {
      return switch (e) {
        case Columnwise c -> c.blocks() == 1 ? "columnwise" : "columnwise by heads";
        case Rowwise r -> "rowwise";
        case Vocabwise v -> "vocabwise";
      };
    }
  }
}
