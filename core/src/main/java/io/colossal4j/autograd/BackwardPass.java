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
  private final StepLedger ledger;
  private final Node root;
  private final Map<Node, Integer> pendingNodes = new IdentityHashMap<>();
  private final Map<Tensor, Integer> pendingLeaves = new IdentityHashMap<>();
  private final Map<Node, Tensor> grads = new IdentityHashMap<>();
  private final PriorityQueue<Node> ready = new PriorityQueue<>((a, b) -> Long.compare(b.sequence(), a.sequence()));

  BackwardPass(Node root, boolean retainGraph, StepLedger ledger) {
    this.root = root;
    this.retainGraph = retainGraph;
    this.ledger = ledger;
    countDependencies();
  }

  void run(Tensor gradRoot) {
    put(root, gradRoot);
    ready.add(root);
    while (!ready.isEmpty()) runNode(ready.poll());
  }

  private void runNode(Node n) {
    Tensor g = grads.remove(n);
    Node.Backward rule = n.backward();
    if (rule == null)
      throw new TensorException("backward through " + n.name() + " a second time: its saved tensors were freed; pass retainGraph=true to the first backward");
    int mark = ledger == null ? 0 : ledger.mark();
    String label = OpLabel.enter("backward " + n.name());
    String region = ledger == null ? null : ledger.enterRegion("backward " + n.region());
    Tensor[] inGrads;
    try {
      inGrads = GradMode.noGrad(() -> rule.apply(g));
    } finally {
      OpLabel.restore(label);
    }
    deliverAll(n, inGrads);
    g.storage().unhold();       // consumed (a returned gradient that aliases it is held by now)
    if (!retainGraph) n.free();
    if (ledger != null) {
      ledger.releaseUnheldSince(mark);   // the rule's temporaries, gradients accumulated into leaves
      ledger.enterRegion(region);
    }
  }

  /** Hands each input of {@code n} that needs one its gradient from {@code inGrads}, in its own dtype. */
  private void deliverAll(Node n, Tensor[] inGrads) {
    List<Tensor> inputs = n.inputs();
    String label = OpLabel.enter("backward accumulate");   // gradient sums, casts and leaf gradients
    try {
      for (int i = 0; i < inputs.size(); i++) {
        Tensor t = inputs.get(i);
        if (t == null || !t.requiresGrad()) continue;
        Tensor gi = i < inGrads.length ? inGrads[i] : null;
        if (gi != null && !gi.shape().equals(t.shape()))
          throw new TensorException("backward of " + n.name() + " returned a gradient of shape " + gi.shape() + " for input " + i + " of shape " + t.shape());
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
      if (pendingLeaves.merge(t, -1, Integer::sum) == 0)
        for (var h : t.gradReadyHooks()) h.accept(t);
      return;
    }
    Node m = (Node) t.gradFn();
    if (gi != null) put(m, gi);
    if (pendingNodes.merge(m, -1, Integer::sum) == 0) {
      if (grads.containsKey(m)) ready.add(m);
      else skipSubgraph(m);
    }
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
          if (pendingLeaves.merge(t, -1, Integer::sum) == 0 && t.grad() != null)
            for (var h : t.gradReadyHooks()) h.accept(t);
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
