package io.colossal4j.parallel.tensor;

import io.colossal4j.step.Accuracy;

import static io.colossal4j.parallel.tensor.TpTesting.leaf;
import static io.colossal4j.parallel.tensor.TpTesting.random;
import static io.colossal4j.testing.GradCheck.assertClose;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.autograd.Autograd;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.nn.Embedding;
import io.colossal4j.nn.Linear;
import io.colossal4j.nn.ModuleContext;
import io.colossal4j.ops.Arith;
import io.colossal4j.ops.Loss;
import io.colossal4j.ops.Reduce;
import io.colossal4j.ops.Views;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Parallel layers against the single-device layers they replace, on the scalar reference backend in f64.
 * Tolerance 1e-12: the only differences are the order of additions (a row-parallel product is two partial
 * sums added by the all-reduce; the cross entropy sums exp over two slices), a few ulps of values of order 1.
 */
class ParallelLayersTest {
  static final double TOL = 1e-12;

  private static ModuleContext ctx(CpuBackend cpu) { return new ModuleContext(cpu, DType.F64, 7); }

  /** fc1 column-parallel → GELU → fc2 row-parallel equals the two plain Linears: output, input and weight gradients. */
  @Test void columnRowPairEqualsLinears() {
    var ranks = TpTesting.ranks(2, CpuBackend::reference, (tp, cpu) -> {
      var c = ctx(cpu);
      Linear fc1 = new Linear(c, 6, 8, true), fc2 = new Linear(c, 8, 5, true);
      var col = new ColumnParallelLinear(fc1, tp, 1, ColumnParallelLinear.Output.SHARDED);
      var row = new RowParallelLinear(fc2, tp, RowParallelLinear.Input.SHARDED);
      Tensor x = leaf(random(cpu, 3, DType.F64, 2, 3, 6));
      Tensor y = row.forward(Arith.gelu(col.forward(x)));
      Autograd.backward(Reduce.sum(Arith.mul(y, random(cpu, 4, DType.F64, 2, 3, 5))));
      var pair = new Pair(col, row);
      var grads = TensorParallelState.gatherGradients(pair, tp);
      return new PairResult(y.toDoubleArray(), x.grad().toDoubleArray(), TpTesting.host(grads), TpTesting.host(TensorParallelState.gather(pair, tp)));
    });
    try (CpuBackend cpu = CpuBackend.reference()) {
      var c = ctx(cpu);
      Linear fc1 = new Linear(c, 6, 8, true), fc2 = new Linear(c, 8, 5, true);
      Tensor x = leaf(random(cpu, 3, DType.F64, 2, 3, 6));
      Tensor y = fc2.forward(Arith.gelu(fc1.forward(x)));
      Autograd.backward(Reduce.sum(Arith.mul(y, random(cpu, 4, DType.F64, 2, 3, 5))));
      var expectedGrads = Map.of("fc1.weight", fc1.weight().grad().toDoubleArray(), "fc1.bias", fc1.bias().grad().toDoubleArray(),
          "fc2.weight", fc2.weight().grad().toDoubleArray(), "fc2.bias", fc2.bias().grad().toDoubleArray());
      for (PairResult r : ranks) {
        assertClose(y.toDoubleArray(), r.y(), TOL, TOL, "output");
        assertClose(x.grad().toDoubleArray(), r.dx(), TOL, TOL, "input gradient");
        expectedGrads.forEach((k, v) -> assertClose(v, r.grads().get(k), TOL, TOL, "gradient of " + k));
        assertArrayEquals(fc1.weight().toDoubleArray(), r.weights().get("fc1.weight"), "gathered weights are the originals");
        assertArrayEquals(fc2.weight().toDoubleArray(), r.weights().get("fc2.weight"));
        assertArrayEquals(fc2.bias().toDoubleArray(), r.weights().get("fc2.bias"));
      }
    }
  }

  record PairResult(double[] y, double[] dx, Map<String, double[]> grads, Map<String, double[]> weights) {}

  /** A gathered column-parallel output is the full Linear's output; its input gradient too. tp = 4 over 8 features. */
  @Test void gatheredColumnOutputEqualsLinear() {
    var ranks = TpTesting.ranks(4, CpuBackend::reference, (tp, cpu) -> {
      var col = new ColumnParallelLinear(new Linear(ctx(cpu), 5, 8, true), tp, 1, ColumnParallelLinear.Output.GATHERED);
      Tensor x = leaf(random(cpu, 3, DType.F64, 3, 5));
      Tensor y = col.forward(x);
      Autograd.backward(Reduce.sum(Arith.mul(y, random(cpu, 4, DType.F64, 3, 8))));
      return new double[][] {y.toDoubleArray(), x.grad().toDoubleArray()};
    });
    try (CpuBackend cpu = CpuBackend.reference()) {
      Linear fc = new Linear(ctx(cpu), 5, 8, true);
      Tensor x = leaf(random(cpu, 3, DType.F64, 3, 5));
      Tensor y = fc.forward(x);
      Autograd.backward(Reduce.sum(Arith.mul(y, random(cpu, 4, DType.F64, 3, 8))));
      for (double[][] r : ranks) {
        assertClose(y.toDoubleArray(), r[0], TOL, TOL, "gathered output");
        assertClose(x.grad().toDoubleArray(), r[1], TOL, TOL, "input gradient");
      }
    }
  }

  /**
   * A fused qkv [3·H·D, dim] with H = 4 heads of D = 2 sharded by heads over tp = 2: rank r's output is
   * heads 2r, 2r+1 of q, then of k, then of v, i.e. the full output viewed [N, 3, H, D] narrowed to
   * those heads. Exact: each output element is the same dot product as on a single device.
   */
  @Test void qkvShardHoldsEachRanksHeadsOfQKAndV() {
    var ranks = TpTesting.ranks(2, CpuBackend::reference, (tp, cpu) -> {
      var col = new ColumnParallelLinear(new Linear(ctx(cpu), 4, 24, true), tp, 3, ColumnParallelLinear.Output.SHARDED);
      assertEquals(Shape.of(12, 4), col.weight().shape());
      return col.forward(random(cpu, 3, DType.F64, 5, 4)).toDoubleArray();
    });
    try (CpuBackend cpu = CpuBackend.reference()) {
      Tensor full = new Linear(ctx(cpu), 4, 24, true).forward(random(cpu, 3, DType.F64, 5, 4));
      for (int r = 0; r < 2; r++) {
        Tensor mine = Views.reshape(Views.narrow(Views.reshape(full, 5, 3, 4, 2), 2, 2 * r, 2), 5, 12);
        assertArrayEquals(mine.toDoubleArray(), ranks.get(r), "rank " + r);
      }
    }
    try (CpuBackend cpu = CpuBackend.reference(); var one = io.colossal4j.distributed.cpu.CpuDistributed.threads(1).getFirst()) {
      var e = assertThrows(IllegalArgumentException.class,
          () -> new ColumnParallelLinear(new Linear(ctx(cpu), 4, 24, true), one, 3, ColumnParallelLinear.Output.GATHERED));
      assertTrue(e.getMessage().contains("fused 3-block"), e.getMessage());
    }
  }

  /** Vocab-parallel lookup equals the plain embedding bit for bit (one non-zero term per sum); its gradient too. */
  @Test void vocabParallelEmbeddingEqualsEmbedding() {
    long[] ids = {0, 9, 4, 5, 5, 2, 9, 7};    // both halves, repeats, both edges of the split at 5
    var ranks = TpTesting.ranks(2, CpuBackend::reference, (tp, cpu) -> {
      var emb = new VocabParallelEmbedding(new Embedding(ctx(cpu), 10, 3, 1.0), tp);
      Tensor y = emb.forward(Tensor.of(ids, Shape.of(2, 4), DType.I64, cpu));
      Autograd.backward(Reduce.sum(Arith.mul(y, random(cpu, 4, DType.F64, 2, 4, 3))));
      var holder = new Pair(emb, new Pair(new Linear(ctx(cpu), 1, 1, false), new Linear(ctx(cpu), 1, 1, false)));
      String bad = assertThrows(TensorException.class, () -> emb.forward(Tensor.of(new long[] {3, 10}, Shape.of(2), DType.I64, cpu))).getMessage();
      return new EmbeddingResult(y.toDoubleArray(), TensorParallelState.gatherGradients(holder, tp).get("fc1.weight").toDoubleArray(), bad);
    });
    try (CpuBackend cpu = CpuBackend.reference()) {
      var emb = new Embedding(ctx(cpu), 10, 3, 1.0);
      Tensor y = emb.forward(Tensor.of(ids, Shape.of(2, 4), DType.I64, cpu));
      Autograd.backward(Reduce.sum(Arith.mul(y, random(cpu, 4, DType.F64, 2, 4, 3))));
      for (EmbeddingResult r : ranks) {
        assertArrayEquals(y.toDoubleArray(), r.y(), "lookup");
        assertClose(emb.weight().grad().toDoubleArray(), r.weightGrad(), TOL, TOL, "weight gradient");
        assertTrue(r.badIdMessage().contains("id 10 at position 1 is outside the vocabulary 0..9"), r.badIdMessage());
      }
    }
  }

  record EmbeddingResult(double[] y, double[] weightGrad, String badIdMessage) {}

  /**
   * Vocab-parallel cross entropy over [2, 3, 10] logits split 5 + 5 equals Loss.crossEntropy on the full
   * [6, 10] logits: plain, with an ignored target, with label smoothing; the logits' gradient slices too.
   */
  @Test void vocabParallelCrossEntropyEqualsCrossEntropy() {
    long[] targets = {0, 4, 5, 9, -100, 7};
    var options = new Loss.CrossEntropyOptions[] {Loss.CrossEntropyOptions.DEFAULT, Loss.CrossEntropyOptions.DEFAULT.withLabelSmoothing(0.1),
        Loss.CrossEntropyOptions.DEFAULT.withReduction(Loss.Reduction.SUM)};
    for (var o : options) {
      var ranks = TpTesting.ranks(2, CpuBackend::reference, (tp, cpu) -> {
        Tensor full = Arith.mulScalar(random(cpu, 11, DType.F64, 2, 3, 10), 30);   // large logits: the max shift matters
        Tensor mine = leaf(Views.contiguous(Views.narrow(full, 2, 5 * tp.rank(), 5)));
        Tensor loss = VocabParallelCrossEntropy.apply(mine, Tensor.of(targets, Shape.of(2, 3), DType.I64, cpu), tp, o);
        Autograd.backward(loss);
        return new double[][] {{loss.item()}, mine.grad().toDoubleArray()};
      });
      try (CpuBackend cpu = CpuBackend.reference()) {
        Tensor full = leaf(Arith.mulScalar(random(cpu, 11, DType.F64, 2, 3, 10), 30).detach());
        Tensor loss = Loss.crossEntropy(Views.reshape(full, 6, 10), Tensor.of(targets, Shape.of(6), DType.I64, cpu), o);
        Autograd.backward(loss);
        for (int r = 0; r < 2; r++) {
          assertClose(new double[] {loss.item()}, ranks.get(r)[0], TOL, TOL, o + " loss");
          double[] slice = Views.contiguous(Views.narrow(full.grad(), 2, 5 * r, 5)).toDoubleArray();
          assertClose(slice, ranks.get(r)[1], TOL, TOL, o + " rank " + r + " gradient");
        }
      }
    }
  }

  /** Top-1 over vocabulary slices equals Accuracy on the full logits, ties (resolved toward the lower index) included. */
  @Test void vocabParallelAccuracyEqualsAccuracy() {
    // 6 rows of 8 logits; rows 3-5 have ties across the split at 4 (target first, target second, ignored target)
    double[] logits = new Random(5).doubles(6 * 8, -1, 1).toArray();
    logits[0] = 3;                                 // row 0: target 0 (rank 0's slice) is the largest: correct
    logits[2 * 8 + 7] = 3;                         // row 2: target 7 (rank 1's slice) is the largest: correct
    logits[3 * 8 + 1] = logits[3 * 8 + 6] = 5;     // target 1 ties with 6: correct
    logits[4 * 8 + 2] = logits[4 * 8 + 5] = 5;     // target 5 ties with 2: not correct
    long[] targets = {0, 3, 7, 1, 5, -100};
    long expected;
    try (CpuBackend cpu = CpuBackend.reference()) {
      Tensor full = Tensor.of(logits, Shape.of(2, 3, 8), DType.F64, cpu);
      expected = io.colossal4j.step.Accuracy.correctTopK(full, Tensor.of(targets, Shape.of(2, 3), DType.I64, cpu), 1);
      assertEquals(3, expected, "rows 0, 2 and 3 are correct; row 1 (target 3) has no raised logit, with uniform(-1, 1) others it loses");
    }
    var counts = TpTesting.ranks(2, CpuBackend::reference, (tp, cpu) -> {
      Tensor full = Tensor.of(logits, Shape.of(2, 3, 8), DType.F64, cpu);
      Tensor mine = Views.contiguous(Views.narrow(full, 2, 4 * tp.rank(), 4));
      return VocabParallelAccuracy.correctTop1(mine, Tensor.of(targets, Shape.of(2, 3), DType.I64, cpu), tp);
    });
    for (long c : counts) assertEquals(expected, c);
  }

  @Test void crossEntropyRejectsTargetsOutsideTheVocabulary() {
    var messages = TpTesting.ranks(2, CpuBackend::reference, (tp, cpu) -> assertThrows(TensorException.class, () -> VocabParallelCrossEntropy.apply(
        random(cpu, 1, DType.F64, 2, 4), Tensor.of(new long[] {1, 8}, Shape.of(2), DType.I64, cpu), tp)).getMessage());
    assertTrue(messages.getFirst().contains("id 8 at position 1 is outside the vocabulary 0..7 and is not the ignore index -100"), messages.getFirst());
  }

  /** Two layers under the names fc1 and fc2, so state dicts read like the single-device pair. */
  static final class Pair extends io.colossal4j.nn.Module {
    Pair(io.colossal4j.nn.Module a, io.colossal4j.nn.Module b) {
      child("fc1", a);
      child("fc2", b);
    }

    @Override public Tensor forward(Tensor x) { throw new UnsupportedOperationException(); }
  }
}
