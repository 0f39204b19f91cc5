package io.colossal4j.autograd;

import io.colossal4j.tensor.GradFn;
import io.colossal4j.tensor.Tensor;
import java.util.List;

/**
 * A recorded op: its inputs and its backward rule. The rule maps the gradient of the op's output to one
 * gradient per input (null where an input needs none) and is written with ops, so it runs on any backend.
 * After a backward pass without retain-graph the rule is dropped, freeing what it saved.
 */
public final class Node implements GradFn {
  /** Gradient of the output in, gradients of the inputs out (same order and shapes as the inputs). */
  @FunctionalInterface
  public interface Backward { Tensor[] apply(Tensor gradOutput); }

  private final String name;
  private final List<Tensor> inputs;
  private final long sequence;
  private Backward backward;

  Node(String name, List<Tensor> inputs, Backward backward, long sequence) {
    this.name = name;
    this.inputs = inputs;
    this.backward = backward;
    this.sequence = sequence;
  }

  /** Creation order; backward runs later nodes first. */
  long sequence() { return sequence; }

  @Override public String name() { return name; }

  @Override public List<Tensor> inputs() { return inputs; }

  Backward backward() { return backward; }

  void free() { backward = null; }

  @Override public String toString() { return name; }
}
