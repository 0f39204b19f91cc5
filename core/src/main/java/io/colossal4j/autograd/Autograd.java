package io.colossal4j.autograd;

import io.colossal4j.backend.BinaryOp;
import io.colossal4j.backend.StepLedger;
import io.colossal4j.tensor.MemoryCategory;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Define-by-run recording and the backward engine.
 *
 * <p>Ops call {@link #record} after computing their output. {@link #backward} runs the recorded rules in
 * reverse creation order (a node runs once every consumer of its output has contributed), which is the
 * reverse of the forward pass: the order in which data parallelism wants its gradient buckets. A leaf's
 * gradient-ready hooks fire as soon as its last contribution in the pass has been accumulated.
 *
 * <p><b>Memory.</b> Each node holds the storages its rule reads (declared with {@link #recordSaving}, or by
 * default its inputs and output). The engine holds each gradient while it waits for its node. During a
 * backward pass without retain-graph inside an open step ({@link io.colossal4j.backend.Backend#openStep}):
 * <ol>
 *   <li>a node's gradient is released once its rule has consumed it, and its saved storages once it has run
 *       (when no other node still holds them): activations go back as the pass walks down the graph;</li>
 *   <li>every rule runs as a region of the step's ledger: what it allocated and did not return (its
 *       temporaries) is released when it returns, as are the gradients accumulated into leaves or summed;</li>
 *   <li>the root and the caller's root gradient are kept until the step ends (the caller may still read them).</li>
 * </ol>
 * Why this is safe: after the forward pass, a step-owned activation is read only by the rules that saved it
 * (declared), and a rule's temporaries only by the rule; a rule runs once. Outside a step holds are counted
 * but release nothing.
 */
public final class Autograd {
  private Autograd() {}

  private static final AtomicLong SEQUENCE = new AtomicLong();

  /**
   * Records {@code out} as produced by {@code name} from {@code inputs} when grad mode is on and any input
   * requires grad. Returns {@code out} for chaining.
   */
  public static Tensor record(String name, Tensor out, Node.Backward backward, Tensor... inputs) {
    if (!needsGrad(inputs)) return out;
    Tensor[] saved = java.util.Arrays.copyOf(inputs, inputs.length + 1);
    saved[inputs.length] = out;
    return attach(name, out, saved, (g, pending) -> backward.apply(g), -1, inputs);
  }

  /**
   * {@link #record} with the tensors the rule reads named explicitly: every tensor the rule captures and
   * reads must be listed (an input, the output, an intermediate such as saved statistics or indices), and
   * only those are kept for backward. {@code record} saves all inputs and the output, which is always safe
   * but keeps more; ops that read less declare it here ({@link #NOTHING} for rules that read only shapes).
   */
  public static Tensor recordSaving(String name, Tensor out, Tensor[] saved, Node.Backward backward, Tensor... inputs) {
    if (!needsGrad(inputs)) return out;
    return attach(name, out, saved, (g, pending) -> backward.apply(g), -1, inputs);
  }

  /**
   * {@link #recordSaving} for a rule that folds the gradient already pending for input {@code foldInput} into its own
   * contribution to it (see {@link Node.FoldingBackward} for the contract). The engine passes that pending gradient
   * when input {@code foldInput} is a non-leaf that already has one and appears only once among the inputs (else
   * null), and takes the returned gradient as the input's new pending sum instead of adding it. Why: a tensor read
   * by two ops (the residual stream of a pre-norm block feeds the residual add and the norm) otherwise costs an
   * extra read-read-write pass per backward; a fused kernel makes that one extra read.
   */
  public static Tensor recordFolding(String name, Tensor out, Tensor[] saved, int foldInput, Node.FoldingBackward backward,
                                     Tensor... inputs) {
    if (foldInput < 0 || foldInput >= inputs.length)
      throw new TensorException(name + ": fold input " + foldInput + " is not an input index (0.." + (inputs.length - 1) + ")");
    if (!needsGrad(inputs)) return out;
    return attach(name, out, saved, backward, foldInput, inputs);
  }

  /** How a backward pass sums two contributions to one non-leaf's gradient. */
  public enum Accumulation {
    /** Rules recorded with {@link #recordFolding} add the pending gradient themselves (the default). */
    FOLDED,
    /** Every sum is the engine's own elementwise add (the reference the folded path is checked against). */
    SEPARATE
  }

  /** For {@link #recordSaving}: a rule that reads no tensor. */
  public static final Tensor[] NOTHING = new Tensor[0];

  /** For {@link #recordSaving}: the tensors a rule reads (nulls skipped). */
  public static Tensor[] saving(Tensor... tensors) { return tensors; }

  private static Tensor attach(String name, Tensor out, Tensor[] saved, Node.FoldingBackward backward, int foldInput, Tensor... inputs) {
    List<Tensor> in = new ArrayList<>(inputs.length);
    for (Tensor t : inputs) in.add(t);
    List<io.colossal4j.tensor.Storage> storages = new ArrayList<>(saved.length);
    for (Tensor t : saved) if (t != null) storages.add(t.storage());
    io.colossal4j.tensor.Storage[] held = storages.toArray(io.colossal4j.tensor.Storage[]::new);
    StepLedger ledger = out.backend().activeStep();
    out.attachGradFn(new Node(name, in, backward, foldInput, SEQUENCE.incrementAndGet(), held, ledger == null ? "" : ledger.region()));
    if (ledger != null) {   // attribution, when a trace is attached
      ledger.produced(out.storage(), name);
      ledger.saved(name, held);
    }
    return out;
  }

  /** Whether an op with these inputs would record (lets ops skip saving tensors for backward). */
  public static boolean needsGrad(Tensor... inputs) {
    if (!GradMode.isEnabled()) return false;
    for (Tensor t : inputs) if (t != null && t.requiresGrad()) return true;
    return false;
  }

  /** Backward from a one-element tensor with gradient 1. */
  public static void backward(Tensor root) {
    if (root.numel() != 1)
      throw new TensorException("backward() without a gradient needs a one-element output, got shape " + root.shape() + "; pass the output gradient");
    backward(root, Tensor.full(root.shape(), root.dtype(), root.backend(), 1.0), false);
  }

  public static void backward(Tensor root, Tensor gradRoot, boolean retainGraph) {
    backward(root, gradRoot, retainGraph, Accumulation.FOLDED);
  }

  /** Backward from {@code root} with gradient {@code gradRoot}, summing contributions as {@code accumulation} says. */
  public static void backward(Tensor root, Tensor gradRoot, boolean retainGraph, Accumulation accumulation) {
    if (!root.requiresGrad())
      throw new TensorException("backward: the tensor does not require grad (no input of its graph was marked requiresGrad(true))");
    if (!gradRoot.shape().equals(root.shape()))
      throw new TensorException("backward: gradient shape " + gradRoot.shape() + " differs from output shape " + root.shape());
    if (root.isLeaf()) {
      accumulateLeaf(root, gradRoot);
      for (var h : root.gradReadyHooks()) h.accept(root);
      return;
    }
    BackwardPass pass = new BackwardPass((Node) root.gradFn(), retainGraph, root.backend().activeStep(), accumulation);
    root.storage().hold();      // kept for the caller, whatever the graph says
    gradRoot.storage().hold();
    pass.run(gradRoot);
    root.storage().unholdKeep();
    gradRoot.storage().unholdKeep();
  }

  /** {@code g} converted to {@code dtype} (a new tensor; no autograd). */
  static Tensor converted(Tensor g, io.colossal4j.tensor.DType dtype) {
    Tensor out = Tensor.empty(g.shape(), dtype, g.backend(), MemoryCategory.ACTIVATION);
    g.backend().kernels().copy(g, out);
    return out;
  }

  /** Sums two contributions to a non-leaf's gradient: an intermediate of this backward pass, hence an activation. */
  static Tensor sum(Tensor a, Tensor b) {
    Tensor out = Tensor.empty(a.shape(), a.dtype(), a.backend(), MemoryCategory.ACTIVATION);
    a.backend().kernels().binary(BinaryOp.ADD, a, b, out);
    return out;
  }

  /**
   * Adds g into leaf.grad (allocating it on first use, in the leaf's dtype, so no gradient ever aliases another
   * tensor). A gradient its op made for this leaf alone ({@link Tensor#markFreshGradient}) becomes the leaf's
   * gradient when it has none (no copy), and is released once added otherwise.
   */
  static void accumulateLeaf(Tensor leaf, Tensor g) {
    if (leaf.takeClaimedGrad(g)) return;   // the op wrote this first contribution straight into the (zeroed) gradient
    boolean overwrite = leaf.claimZeroedGrad();   // lazily zeroed: the first contribution is a copy, not an add
    Tensor acc = leaf.grad();
    if (g.takeFreshGradient()) {
      if (acc == null && g.dtype() == leaf.dtype() && g.shape().equals(leaf.shape()) && g.isContiguous() && g.backend() == leaf.backend()) {
        leaf.setOwnedGrad(g);
        return;
      }
      accumulateInto(leaf, acc, overwrite, g);
      g.storage().release();
      return;
    }
    accumulateInto(leaf, acc, overwrite, g);
  }

  private static void accumulateInto(Tensor leaf, Tensor acc, boolean overwrite, Tensor g) {
    leaf.backend().joinSideWork();   // acc or g may come from a side-stream job (Kernels.linearWeightGrad)
    if (acc != null && overwrite) {
      acc.backend().kernels().copy(g, acc);
    } else if (acc == null) {
      acc = Tensor.empty(leaf.shape(), leaf.dtype(), leaf.backend(), MemoryCategory.GRADIENT);
      leaf.backend().kernels().copy(g, acc);
      leaf.setOwnedGrad(acc);
    } else {
      acc.backend().kernels().binary(BinaryOp.ADD, acc, g, acc);
    }
  }
}
