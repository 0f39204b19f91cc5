package io.colossal4j.optim;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import io.colossal4j.autograd.Autograd;
import io.colossal4j.backend.Backend;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.ops.Arith;
import io.colossal4j.ops.Reduce;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * {@link Optimizer#zeroGrad} zeroes lazily (no pass over the gradients): whatever happens after it must look
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
}
