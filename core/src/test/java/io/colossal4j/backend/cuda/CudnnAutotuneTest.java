package io.colossal4j.backend.cuda;

import static io.colossal4j.backend.cuda.CudaTestSupport.gpu;
import static io.colossal4j.backend.cuda.CudaTestSupport.nearScaled;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.backend.FusedAttention;
import io.colossal4j.backend.FusedAttention.Spec;
import io.colossal4j.backend.cuda.CudaOptions.CudnnPlans;
import io.colossal4j.backend.cuda.CudnnAttentionTest.Case;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * Autotuned cuDNN attention plans, on a ViT-H-shaped case (577 × 80 through packed qkv views) and a causal
 * GPT-shaped one (1024 × 64). The autotuned first call (which ran every candidate plan on the call's own output
 * buffers before the winner's real run) must give the same outputs as each candidate run alone, pinned by its
 * engine tag, on fresh NaN-poisoned outputs: a candidate that accumulated into an output, or a timing run that
 * left something behind, would show up there. The choice must be the fastest candidate that ran, and with autotuning
 * off the plan must be the heuristics' first, the first candidate autotuning timed. All against our own kernel too.
 */
class CudnnAutotuneTest {
  private static final String[] NAMES = {"out", "lse", "dq", "dk", "dv"};
  /**
   * Between two cuDNN engines as between cuDNN and our kernel (CudnnAttentionTest): both round P and dS to the
   * 16-bit type before their products and accumulate in f32, in different orders and tile shapes; a few 16-bit
   * ulps of the tensor's largest value. A corrupted output (a doubled dQ, stale rows) is off by O(1) of it.
   */
  private static final double TOL = 1e-2;
  private static final Case[] CASES = {
      new Case(2, 16, 577, 577, 80, false, DType.BF16, true),
      new Case(2, 4, 1024, 1024, 64, true, DType.BF16, false)};

  private final Random rnd = new Random(11);

  private static CudaKernels kernels() { return (CudaKernels) gpu().kernels(); }

  private static CudnnAttention cudnn(CudnnPlans choice, java.util.function.Predicate<String> accept) {
    CudaKernels k = kernels();
    CudnnAttention a = new CudnnAttention(k, new CudaAttention(k, CudaAttention.Variant.WIDE), choice, accept);
    String what = a.describe();
    if (what.startsWith("cuDNN unavailable")) {
      a.close();
      Assumptions.abort(what);
    }
    return a;
  }

  @Test void everyTimedCandidateGivesTheAutotunedResult() { everyCandidateAgrees(CudnnPlans.AUTOTUNE); }

  /** Knob variants too: engine configurations the heuristics did not offer, built from the engines' knob ranges. */
  @Test void everyExploredCandidateGivesTheAutotunedResult() { everyCandidateAgrees(CudnnPlans.EXPLORE); }

  private void everyCandidateAgrees(CudnnPlans choice) {
    CudnnAttention tuned = cudnn(choice, tag -> true);
    CudaAttention ours = new CudaAttention(kernels(), CudaAttention.Variant.WIDE);
    try {
      for (Case c : CASES) {
        Tensor[] in = CudnnAttentionTest.operands(rnd, c);
        Spec spec = new Spec(1 / Math.sqrt(c.d()), c.causal(), 0, 0, 0);
        Tensor[] ref = run(tuned, tuned, in, spec);   // the key's first calls: candidates timed, then the winners run
        List<CudnnTuner.Choice> choices = tuned.engines();
        CudnnTuner.Choice fwd = choices.get(choices.size() - 2), bwd = choices.getLast();
        System.out.println("[cudnn " + choice + "] " + c + "\n  " + fwd.describe() + "\n  " + bwd.describe());
        assertTrue(fwd.label().startsWith("fwd") && bwd.label().startsWith("bwd"), fwd.label() + " / " + bwd.label());
        assertEquals(0, tuned.calls()[1], c + ": fell back to our kernel: " + tuned.refusal());
        requireFastest(fwd);
        requireFastest(bwd);
        Tensor[] theirs = run(ours, ours, in, spec);
        for (int i = 0; i < NAMES.length; i++) nearScaled(c + " autotuned vs ours " + NAMES[i], theirs[i], ref[i], TOL);
        List<String> fwdTags = ranEngines(fwd), bwdTags = ranEngines(bwd);
        for (int i = 0; i < Math.max(fwdTags.size(), bwdTags.size()); i++) {
          String ft = fwdTags.get(Math.min(i, fwdTags.size() - 1)), bt = bwdTags.get(Math.min(i, bwdTags.size() - 1));
          // the same enumeration reaches the same tags; the predicate leaves one candidate, run untimed
          CudnnAttention f = cudnn(choice, ft::equals), b = cudnn(choice, bt::equals);
          try {
            Tensor[] alone = run(f, b, in, spec);
            assertEquals(0, f.calls()[1] + b.calls()[1], c + ": pinned " + ft + " / " + bt + " fell back: " + f.refusal() + " " + b.refusal());
            assertEquals(ft, f.engines().getFirst().engine(), "forward pinned to its candidate");
            assertEquals(bt, b.engines().getFirst().engine(), "backward pinned to its candidate");
            for (int j = 0; j < NAMES.length; j++) nearScaled(c + " " + ft + " / " + bt + " alone vs autotuned " + NAMES[j], alone[j], ref[j], TOL);
          } finally {
            f.close();
            b.close();
          }
        }
      }
    } finally {
      tuned.close();
    }
  }

  @Test void heuristicsChoiceIsTheFirstCandidateAndStillAgrees() {
    CudnnAttention tuned = cudnn(CudnnPlans.AUTOTUNE, tag -> true), first = cudnn(CudnnPlans.HEURISTIC, tag -> true);
    CudaAttention ours = new CudaAttention(kernels(), CudaAttention.Variant.WIDE);
    try {
      for (Case c : CASES) {
        Tensor[] in = CudnnAttentionTest.operands(rnd, c);
        Spec spec = new Spec(1 / Math.sqrt(c.d()), c.causal(), 0, 0, 0);
        run(tuned, tuned, in, spec);
        Tensor[] got = run(first, first, in, spec), theirs = run(ours, ours, in, spec);
        assertEquals(0, first.calls()[1], c + ": fell back to our kernel: " + first.refusal());
        for (int i = 0; i < NAMES.length; i++) nearScaled(c + " heuristics' plan vs ours " + NAMES[i], theirs[i], got[i], TOL);
        List<CudnnTuner.Choice> t = tuned.engines(), h = first.engines();
        for (int i = 1; i <= 2; i++) {
          CudnnTuner.Choice tc = t.get(t.size() - i), hc = h.get(h.size() - i);
          assertEquals(tc.label(), hc.label());
          assertTrue(hc.timings().isEmpty(), "autotuning off times nothing: " + hc.describe());
          String firstCandidate = tc.timings().isEmpty() ? tc.engine() : tc.timings().getFirst().engine();
          assertEquals(firstCandidate, hc.engine(), "the heuristics' plan is autotuning's first candidate (" + tc.describe() + ")");
        }
      }
    } finally {
      tuned.close();
      first.close();
    }
  }

  /** The kept engine is the fastest candidate that ran (every candidate: a single one is kept untimed). */
  private static void requireFastest(CudnnTuner.Choice c) {
    if (c.timings().isEmpty()) return;
    int best = CudnnTuner.fastest(c.timings());
    assertTrue(best >= 0, "no candidate ran: " + c.describe());
    assertEquals(c.timings().get(best).engine(), c.engine(), c.describe());
  }

  private static List<String> ranEngines(CudnnTuner.Choice c) {
    if (c.timings().isEmpty()) return List.of(c.engine());
    List<String> ran = c.timings().stream().filter(CudnnTuner.Timing::ran).map(CudnnTuner.Timing::engine).toList();
    assertFalse(ran.isEmpty(), c.describe());
    return ran;
  }

  /** Forward with {@code fwd}, backward with {@code bwd}, into outputs filled with NaN first: out, lse, dq, dk, dv. */
  private static Tensor[] run(FusedAttention fwd, FusedAttention bwd, Tensor[] in, Spec spec) {
    Tensor q = in[0], k = in[1], v = in[2], go = in[3];
    Tensor o = poisoned(q.shape(), q.dtype()), lse = poisoned(Shape.of(q.size(0), q.size(1), q.size(2)), DType.F32);
    Tensor gq = poisoned(q.shape(), q.dtype()), gk = poisoned(k.shape(), k.dtype()), gv = poisoned(v.shape(), v.dtype());
    fwd.forward(q, k, v, null, spec, o, lse);
    bwd.backward(go, q, k, v, null, o, lse, spec, gq, gk, gv, null);
    return new Tensor[] {o, lse, gq, gk, gv};
  }

  private static Tensor poisoned(Shape shape, DType dtype) {
    Tensor t = Tensor.empty(shape, dtype, gpu());
    t.backend().kernels().fill(t, Double.NaN);
    return t;
  }
}
