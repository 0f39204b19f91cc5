package io.colossal4j.autograd;

import io.colossal4j.backend.StepLedger;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Rng;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Function;

/**
 * Activation checkpointing: trade compute for memory by keeping only a block's inputs during the forward
 * pass and recomputing the block during the backward pass.
 *
 * <p>{@link #apply} runs {@code fn} under no-grad (no intermediate activation is kept) and records one
 * node whose backward
 * <ol>
 *   <li>restores the given {@link Rng} streams to their positions at forward time, so dropout inside
 *       {@code fn} draws the same masks;</li>
 *   <li>recomputes {@code fn} with grad enabled on detached copies of the inputs;</li>
 *   <li>backpropagates the incoming gradient through the recomputed graph: parameters used inside
 *       {@code fn} receive their gradients there, as leaves; the inputs' gradients are returned to the
 *       outer pass;</li>
 *   <li>puts the streams back where they were before the backward step.</li>
 * </ol>
 * The result is bitwise identical to running {@code fn} directly, provided {@code fn} is deterministic
 * given its inputs, its parameters and those streams, and nothing modifies the inputs in place between
 * forward and backward (they are kept by reference, not copied).
 *
 * <p>Because parameters inside {@code fn} are invisible until recomputation, the output is recorded
 * whenever grad mode is on, even if no input requires grad. A parameter's gradient-ready hooks fire during
 * the inner pass, when this block's contribution is accumulated: a parameter also used outside the block
 * (weight tying) sees its hook fire before the outer pass has finished with it.
 */
public final class Checkpoint {
  private Checkpoint() {}

  /** {@link #apply(Function, List, Tensor...)} for a block that draws no random numbers. */
  public static Tensor apply(Function<Tensor[], Tensor> fn, Tensor... inputs) { return apply(fn, List.of(), inputs); }

  /**
   * Runs {@code fn(inputs)} checkpointed. {@code rngs} lists every stream {@code fn} draws from (dropout,
   * drop-path); a stream left out would give different masks on recomputation, hence wrong gradients.
   */
  public static Tensor apply(Function<Tensor[], Tensor> fn, List<Rng> rngs, Tensor... inputs) {
    if (inputs.length == 0) throw new TensorException("checkpoint: needs at least one input tensor (it names the backend)");
    if (!GradMode.isEnabled()) return fn.apply(inputs);
    List<Rng> streams = List.copyOf(rngs);
    List<Rng.State> atForward = snapshot(streams);
    Tensor[] kept = inputs.clone();
    Tensor computed = GradMode.noGrad(() -> fn.apply(kept));
    if (computed == null) throw new TensorException("checkpoint: the block returned null");
    // a fresh tensor object, so that recording never attaches a gradFn to an input the block passed through
    Tensor out = computed.detach();
    // forces recording when only parameters inside fn need gradients; its own gradient is always null
    Tensor anchor = Tensor.empty(Shape.scalar(), DType.F32, kept[0].backend()).requiresGrad(true);
    Tensor[] recorded = Arrays.copyOf(kept, kept.length + 1);
    recorded[kept.length] = anchor;
    return Autograd.record("checkpoint", out, g -> recompute(fn, streams, atForward, kept, g), recorded);
  }

  private static Tensor[] recompute(Function<Tensor[], Tensor> fn, List<Rng> streams, List<Rng.State> atForward, Tensor[] inputs, Tensor g) {
    List<Rng.State> beforeBackward = snapshot(streams);
    restore(streams, atForward);
    try {
      Tensor[] detached = new Tensor[inputs.length];
      for (int i = 0; i < inputs.length; i++) detached[i] = inputs[i].detach().requiresGrad(inputs[i].requiresGrad());
      Tensor y = GradMode.withGrad(() -> fn.apply(detached));
      if (!y.shape().equals(g.shape()))
        throw new TensorException("checkpoint: recomputation gave shape " + y.shape() + ", the forward gave " + g.shape() + " (is the block deterministic?)");
      if (y.requiresGrad()) Autograd.backward(y, g, false);
      Tensor[] grads = new Tensor[inputs.length + 1]; // the last slot is the anchor's: no gradient
      for (int i = 0; i < inputs.length; i++) grads[i] = detached[i].requiresGrad() ? detached[i].grad() : null;
      // the inner leaves' gradients are gradients in flight for the outer pass: the step owns them
      StepLedger ledger = g.backend().activeStep();
      if (ledger != null) for (Tensor gi : grads) if (gi != null) ledger.add(gi.storage());
      return grads;
    } finally {
      restore(streams, beforeBackward);
    }
  }

  private static List<Rng.State> snapshot(List<Rng> streams) {
    List<Rng.State> s = new ArrayList<>(streams.size());
    for (Rng r : streams) s.add(r.snapshot());
    return s;
  }

  private static void restore(List<Rng> streams, List<Rng.State> states) {
    for (int i = 0; i < streams.size(); i++) streams.get(i).restore(states.get(i));
  }
}
