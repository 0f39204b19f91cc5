package io.colossal4j.autograd;

import io.colossal4j.backend.OpLabel;
import io.colossal4j.backend.StepLedger;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;
import java.util.ArrayDeque;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;

/**
 * One backward pass from a root node (see {@link Autograd#backward(Tensor, Tensor, boolean)}): counts how many
 * consumers each node and leaf has in the graph, then runs nodes latest-first once all their consumers have
 * contributed. Owns the holds on gradients in flight: a contribution is held from the moment it is queued for
 * its node until that node's rule has consumed it; summed contributions are released as they are merged.
 * Each rule runs as a region of the step's ledger (when a step is open), so its temporaries go back when it
 * returns. Single use, one thread.
 */
final class BackwardPass {
  private final boolean retainGraph;
  private final boolean fold;
  private final StepLedger ledger;
  private final Node root;
  private final Map<Node, Integer> pendingNodes = new IdentityHashMap<>();
  private final Map<Tensor, Integer> pendingLeaves = new IdentityHashMap<>();
  private final Map<Node, Tensor> grads = new IdentityHashMap<>();
  private final PriorityQueue<Node> ready = new PriorityQueue<>((a, b) -> Long.compare(b.sequence(), a.sequence()));

  BackwardPass(Node root, boolean retainGraph, StepLedger ledger, Autograd.Accumulation accumulation) {
    this.root = root;
    this.retainGraph = retainGraph;
    this.fold = accumulation == Autograd.Accumulation.FOLDED;
    this.ledger = ledger;
    countDependencies();
  }

  void run(Tensor gradRoot) {
    put(root, gradRoot);
    ready.add(root);
    try {
      while (!ready.isEmpty()) runNode(ready.poll());
    } finally {
      gradRoot.backend().joinSideWork();   // leaf gradients computed beside the main stream are complete for what follows
    }
  }

  private void runNode(Node n) {
    Tensor g = grads.remove(n);
    Node.FoldingBackward rule = n.backward();
    if (rule == null)
      throw new TensorException("backward through " + n.name() + " a second time: its saved tensors were freed; pass retainGraph=true to the first backward");
    int mark = ledger == null ? 0 : ledger.mark();
    String label = OpLabel.enter("backward " + n.name());
    String region = ledger == null ? null : ledger.enterRegion("backward " + n.region());
    Tensor pending = pendingToFold(n);
    Tensor[] inGrads;
    try {
      inGrads = GradMode.noGrad(() -> rule.apply(g, pending));
    } finally {
      OpLabel.restore(label);
    }
    deliverAll(n, inGrads, pending);
    g.storage().unhold();       // consumed (a returned gradient that aliases it is held by now)
    if (!retainGraph) n.free();
    if (ledger != null) {
      ledger.releaseUnheldSince(mark);   // the rule's temporaries, gradients accumulated into leaves
      ledger.enterRegion(region);
    }
  }

  /**
   * The gradient already pending for n's fold input, when n's rule can fold it in: the input is a non-leaf with a
   * pending gradient whose node feeds n through that input only (otherwise the sums' order would change). Else null.
   */
  private Tensor pendingToFold(Node n) {
    int i = n.foldInput();
    if (!fold || i < 0) return null;
    List<Tensor> inputs = n.inputs();
    Tensor t = inputs.get(i);
    if (t == null || !t.requiresGrad() || t.isLeaf()) return null;
    for (int j = 0; j < inputs.size(); j++) {
      Tensor o = inputs.get(j);
      if (j != i && o != null && o.gradFn() == t.gradFn()) return null;
    }
    return grads.get((Node) t.gradFn());
  }

  /**
   * Hands each input of {@code n} that needs one its gradient from {@code inGrads}, in its own dtype. With
   * {@code folded} non-null, the gradient for n's fold input already includes that pending gradient: it replaces it.
   */
  private void deliverAll(Node n, Tensor[] inGrads, Tensor folded) {
    List<Tensor> inputs = n.inputs();
    String label = OpLabel.enter("backward accumulate");   // gradient sums, casts and leaf gradients
    try {
      for (int i = 0; i < inputs.size(); i++) {
        Tensor t = inputs.get(i);
        if (t == null || !t.requiresGrad()) continue;
        Tensor gi = i < inGrads.length ? inGrads[i] : null;
        if (gi != null && !gi.shape().equals(t.shape()))
          throw new TensorException("backward of " + n.name() + " returned a gradient of shape " + gi.shape() + " for input " + i + " of shape " + t.shape());
        if (folded != null && i == n.foldInput()) {
          deliverFolded(n, t, gi, folded);
          continue;
        }
        // a gradient has its input's dtype (as PyTorch's engine casts): a bf16 activation that met an f32
        // tensor in a promoting op gets a bf16 gradient, so its producer's backward stays in bf16 (tensor-core GEMMs)
        if (gi != null && gi.dtype() != t.dtype() && !t.isLeaf()) gi = Autograd.converted(gi, t.dtype());
        deliver(t, gi);
      }
    } finally {
      OpLabel.restore(label);
    }
  }

  /** Hands input {@code t} its gradient {@code gi} (null: none from this consumer) and counts the consumer down. */
  private void deliver(Tensor t, Tensor gi) {
    if (t.isLeaf()) {
      if (gi != null) Autograd.accumulateLeaf(t, gi);
      if (pendingLeaves.merge(t, -1, Integer::sum) == 0) fireHooks(t);
      return;
    }
    Node m = (Node) t.gradFn();
    if (gi != null) put(m, gi);
    if (pendingNodes.merge(m, -1, Integer::sum) == 0) {
      if (grads.containsKey(m)) ready.add(m);
      else skipSubgraph(m);
    }
  }

  /** Runs leaf t's gradient-ready hooks, after the side work that may have computed its gradient. */
  private static void fireHooks(Tensor t) {
    var hooks = t.gradReadyHooks();
    if (hooks.isEmpty()) return;
    t.backend().joinSideWork();
    for (var h : hooks) h.accept(t);
  }

  /** Input t's new pending gradient {@code sum} (= folded + n's contribution, by n's rule), or folded kept when sum is null. */
  private void deliverFolded(Node n, Tensor t, Tensor sum, Tensor folded) {
    Node m = (Node) t.gradFn();
    if (sum != null) {
      if (sum.dtype() != t.dtype() || sum == folded || sum.storage() == folded.storage())
        throw new TensorException("backward of " + n.name() + " folded the pending gradient of input " + n.foldInput() + " into "
            + (sum.dtype() != t.dtype() ? "dtype " + sum.dtype() + " instead of the input's " + t.dtype() : "its own storage instead of a new tensor"));
      sum.storage().hold();
      grads.put(m, sum);
      folded.storage().unhold();
    }
    if (pendingNodes.merge(m, -1, Integer::sum) == 0) ready.add(m);
  }

  /** Adds a gradient contribution for {@code m}, held until m's rule consumes it; two contributions are summed. */
  private void put(Node m, Tensor gi) {
    Tensor old = grads.get(m);
    Tensor now = old == null ? gi : Autograd.sum(old, gi);
    now.storage().hold();
    grads.put(m, now);
    if (old != null) old.storage().unhold();
  }

  /** A node all of whose consumers gave no gradient: its inputs still count down (so hooks fire), with nothing to add. */
  private void skipSubgraph(Node m) {
    ArrayDeque<Node> stack = new ArrayDeque<>();
    stack.push(m);
    while (!stack.isEmpty()) {
      Node n = stack.pop();
      if (!retainGraph) n.free();
      for (Tensor t : n.inputs()) {
        if (t == null || !t.requiresGrad()) continue;
        if (t.isLeaf()) {
          if (pendingLeaves.merge(t, -1, Integer::sum) == 0 && t.grad() != null) fireHooks(t);
        } else {
          Node k = (Node) t.gradFn();
          if (pendingNodes.merge(k, -1, Integer::sum) == 0) {
            if (grads.containsKey(k)) ready.add(k);
            else stack.push(k);
          }
        }
      }
    }
  }

  private void countDependencies() {
    ArrayDeque<Node> stack = new ArrayDeque<>();
    IdentityHashMap<Node, Boolean> seen = new IdentityHashMap<>();
    stack.push(root);
    seen.put(root, true);
    while (!stack.isEmpty()) {
      Node n = stack.pop();
      for (Tensor t : n.inputs()) {
        if (t == null || !t.requiresGrad()) continue;
        if (t.isLeaf()) {
          pendingLeaves.merge(t, 1, Integer::sum);
        } else {
          Node m = (Node) t.gradFn();
          pendingNodes.merge(m, 1, Integer::sum);
          if (seen.put(m, true) == null) stack.push(m);
        }
      }
    }
  }
}
