package io.colossal4j.train;

import io.colossal4j.step.StepHooks;

import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.distributed.Reduction;
import io.colossal4j.nn.Module;
import io.colossal4j.optim.GradClip;
import io.colossal4j.parallel.tensor.TensorParallelState;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.List;
import java.util.Optional;

/**
 * The engine hooks of a hybrid layout: data parallelism's gradient synchronisation (when dp > 1) plus the
 * true global gradient norm for clipping: sharded tensor-parallel parameters summed over tp, replicated ones
 * counted once, pipeline stages summed over pp; data-parallel replicas hold identical (averaged) gradients.
 */
final class HybridHooks implements StepHooks {
  private final StepHooks data;
  private final Module model;
  private final Optional<ProcessGroup> tp;
  private final Optional<ProcessGroup> pp;

  HybridHooks(StepHooks data, Module model, Optional<ProcessGroup> tp, Optional<ProcessGroup> pp) {
    this.data = data;
    this.model = model;
    this.tp = tp;
    this.pp = pp;
  }

  @Override public void beforeBackward(int micro, int count) { data.beforeBackward(micro, count); }

  @Override public void beforeStep() { data.beforeStep(); }

  @Override public void afterStep() { data.afterStep(); }

  @Override public Tensor reduceStepMetrics(Tensor sums) { return data.reduceStepMetrics(sums); }

  @Override public Tensor gradSquaredNorm(List<Tensor> params) {
    Tensor s = tp.isPresent()
        ? Tensor.of(new double[] {TensorParallelState.gradSquaredNorm(tp.get(), model)}, Shape.of(1), DType.F64, params.getFirst().backend())
        : GradClip.sumOfSquaresOnDevice(params);
    if (pp.isPresent()) pp.get().allReduce(s, Reduction.SUM);
    return s;
  }
}
