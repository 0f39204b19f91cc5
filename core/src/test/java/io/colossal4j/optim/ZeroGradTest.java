package io.colossal4j.optim;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.autograd.Autograd;
import io.colossal4j.backend.Backend;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.ops.Arith;
import io.colossal4j.ops.Reduce;
import io.colossal4j.ops.Views;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * {@link Optimizer#releaseGrads} (set to none) releases what autograd allocated and nothing else, and changes no
 * number. {@link Optimizer#zeroGrad} zeroes lazily (no pass over the gradients): whatever happens after it must look
 * exactly as if the gradients had been filled with zeros. Exact values (small integers in f64).
 */
class ZeroGradTest {
  private final Backend cpu = CpuBackend.reference();
  private final Tensor x = Tensor.of(new double[] {1, 2, 3}, Shape.of(3), DType.F64, cpu);
  private final Tensor p = Tensor.of(new double[] {5, 6, 7}, Shape.of(3), DType.F64, cpu).requiresGrad(true);
  private final Tensor unused = Tensor.of(new double[] {9, 9}, Shape.of(2), DType.F64, cpu).requiresGrad(true);

  private Optimizer sgd() {
    Map<String, Tensor> named = new LinkedHashMap<>();
    named.put("p", p);
    named.put("unused", unused);
    return new Sgd(ParamGroup.single(named, 0), 0, 0, false);
  }

  @Test void aGradientReadAfterZeroingIsZero() {
    Optimizer opt = sgd();
    Autograd.backward(Reduce.sum(Arith.mul(p, x)));
    assertArrayEquals(new double[] {1, 2, 3}, p.grad().toDoubleArray());
    opt.zeroGrad();
    assertArrayEquals(new double[] {0, 0, 0}, p.grad().toDoubleArray());
    assertNull(unused.grad(), "a parameter that never had a gradient keeps none");
  }

  @Test void theFirstContributionAfterZeroingOverwritesAndLaterOnesAdd() {
    Optimizer opt = sgd();
    Autograd.backward(Reduce.sum(Arith.mul(p, x)));
    opt.zeroGrad();
    // p used twice: the first contribution replaces the stale gradient, the second adds to it
    Autograd.backward(Reduce.sum(Arith.add(Arith.mul(p, x), Arith.mul(p, p))));
    assertArrayEquals(new double[] {1 + 10, 2 + 12, 3 + 14}, p.grad().toDoubleArray());
    opt.zeroGrad();
    Autograd.backward(Reduce.sum(Arith.mul(p, x)));
    Autograd.backward(Reduce.sum(Arith.mul(p, x)));   // accumulation across backward passes still adds
    assertArrayEquals(new double[] {2, 4, 6}, p.grad().toDoubleArray());
  }

  @Test void aParameterWithoutContributionSeesZerosAtTheStep() {
    Map<String, Tensor> named = new LinkedHashMap<>();
    named.put("p", p);
    Optimizer opt = new Sgd(ParamGroup.single(named, 0), 0, 0, false);
    Autograd.backward(Reduce.sum(Arith.mul(p, x)));
    opt.zeroGrad();
    opt.step(1.0);   // no backward in between: a zero gradient, so p must not move
    assertArrayEquals(new double[] {5, 6, 7}, p.toDoubleArray());
  }

  @Test void releasedGradientsGoBackAndTheNextBackwardStartsFromNone() {
    Optimizer opt = sgd();
    Autograd.backward(Reduce.sum(Arith.mul(p, x)));
    Tensor old = p.grad();
    opt.releaseGrads();
    assertNull(p.grad(), "set to none");
    assertTrue(old.storage().isReleased(), "the gradient's memory went back");
    Autograd.backward(Reduce.sum(Arith.add(Arith.mul(p, x), Arith.mul(p, p))));
    assertArrayEquals(new double[] {1 + 10, 2 + 12, 3 + 14}, p.grad().toDoubleArray());
  }

  @Test void aGradientInstalledByItsOwnerIsZeroedNotReleased() {
    Optimizer opt = sgd();
    Tensor bucket = Tensor.of(new double[] {4, 4, 4, 4}, Shape.of(4), DType.F64, cpu);
    p.setGrad(Views.narrow(bucket, 0, 1, 3));    // as data parallelism's bucket views
    opt.releaseGrads();
    assertFalse(bucket.storage().isReleased());
    assertArrayEquals(new double[] {0, 0, 0}, p.grad().toDoubleArray());
    Autograd.backward(Reduce.sum(Arith.mul(p, x)));
    assertArrayEquals(new double[] {4, 1, 2, 3}, bucket.toDoubleArray(), "the first contribution overwrites the view in place");
  }

  /** Releasing instead of zeroing changes no number: three Adam steps each way from the same start, exactly equal. */
  @Test void releasingGivesTheSameUpdatesAsZeroing() {
    double[][] after = new double[2][];
    for (int way = 0; way < 2; way++) {
      Tensor q = Tensor.of(new double[] {5, 6, 7}, Shape.of(3), DType.F64, cpu).requiresGrad(true);
      Map<String, Tensor> named = new LinkedHashMap<>();
      named.put("q", q);
      Optimizer opt = Adam.adamW(ParamGroup.single(named, 0.1));
      for (int step = 0; step < 3; step++) {
        Autograd.backward(Reduce.sum(Arith.mul(Arith.mul(q, q), x)));
        opt.step(0.1);
        if (way == 0) opt.zeroGrad();
        else opt.releaseGrads();
      }
      after[way] = q.toDoubleArray();
    }
    assertArrayEquals(after[0], after[1], 0.0);
  }
}
