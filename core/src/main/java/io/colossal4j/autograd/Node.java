package io.colossal4j.autograd;

import io.colossal4j.tensor.GradFn;
import io.colossal4j.tensor.Storage;
import io.colossal4j.tensor.Tensor;
import java.util.List;

/**
 * A recorded op: its inputs, its backward rule and the storages the rule reads (its saved tensors). The rule
 * maps the gradient of the op's output to one gradient per input (null where an input needs none) and is
 * written with ops, so it runs on any backend.
 *
 * <p>Ownership: the node holds each saved storage ({@link Storage#hold}) from recording until {@link #free},
 * which the backward engine calls once the rule has run (without retain-graph). Dropping the rule and the
 * holds together is what lets a step-owned activation go back to the allocator as soon as the last node
 * that saved it has run, instead of at the end of the step.
 */
public final class Node implements GradFn {
  /** Gradient of the output in, gradients of the inputs out (same order and shapes as the inputs). */
  @FunctionalInterface
  public interface Backward { Tensor[] apply(Tensor gradOutput); }

  /**
   * A rule that can fold the gradient already pending for one of its inputs (its fold input, see
   * {@link Autograd#recordFolding}) into the gradient it computes for that input, so the engine need not sum the
   * two with a separate elementwise pass. Contract when {@code pending} is non-null: the gradient returned for the
   * fold input is {@code pending + contribution}, bit for bit what the engine's own sum would give (the
   * contribution rounded to the input's dtype first, then added with pending as the left operand), in the input's
   * dtype and shape, in a new tensor (pending is only read: the rule must not write it or return it). With
   * {@code pending} null it is a plain {@link Backward}.
   */
  @FunctionalInterface
  public interface FoldingBackward { Tensor[] apply(Tensor gradOutput, Tensor pending); }

  private final String name;
  private final List<Tensor> inputs;
  private final long sequence;
  private final String region;
  private final int foldInput;
  private FoldingBackward backward;
  private Storage[] saved;

  /** {@code foldInput}: the input whose pending gradient the rule folds in, or -1 (then the rule ignores pending). */
  Node(String name, List<Tensor> inputs, FoldingBackward backward, int foldInput, long sequence, Storage[] saved, String region) {
    this.name = name;
    this.region = region;
    this.inputs = inputs;
    this.backward = backward;
    this.foldInput = foldInput;
    this.sequence = sequence;
    this.saved = saved;
    for (Storage s : saved) s.hold();
  }

  /** Creation order; backward runs later nodes first. */
  long sequence() { return sequence; }

  @Override public String name() { return name; }

  /** The step region (model unit) that recorded this node, "" outside a step: for memory attribution. */
  String region() { return region; }

  @Override public List<Tensor> inputs() { return inputs; }

  /** The rule, null once freed; it ignores its pending argument unless {@link #foldInput} is an input index. */
  FoldingBackward backward() { return backward; }

  /** The input whose already-pending gradient the rule can fold into its own contribution, or -1. */
  int foldInput() { return foldInput; }

  /** How many storages this node still holds (0 once freed). */
  int savedCount() { return saved.length; }

  /** Drops the rule and the holds on its saved storages (idempotent); a step-owned one nobody else holds is released. */
  void free() {
    backward = null;
    Storage[] s = saved;
    saved = new Storage[0];
    for (Storage st : s) st.unhold();
  }

  @Override public String toString() { return name; }
}
