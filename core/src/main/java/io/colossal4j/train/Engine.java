package io.colossal4j.train;

import io.colossal4j.step.Batch;
import io.colossal4j.step.LossFunction;
import io.colossal4j.step.MicroBatchSchedule;
import io.colossal4j.step.StepHooks;

import io.colossal4j.nn.Module;
import io.colossal4j.optim.GradClip;
import io.colossal4j.optim.LrSchedule;
import io.colossal4j.optim.Optimizer;
import io.colossal4j.tensor.Tensor;
import java.util.List;

/**
 * Wraps model, optimizer, loss and learning-rate schedule: one call per optimizer step. A global batch is
 * split into {@code accumulation} micro-batches; each contributes loss/accumulation to the gradients, so
 * the update equals one step on the whole batch. Parallel strategies plug in around this through the
 * model's gradient-ready hooks and {@link io.colossal4j.step.StepHooks}, never by changing model code.
 */
public final class Engine {
  /** What one step reports. */
  public record StepResult(double loss, long correct, int samples, double lr, double gradNorm) {}

  private final Module model;
  private final Optimizer optimizer;
  private final LossFunction loss;
  private final LrSchedule schedule;
  private final MicroBatchSchedule microSchedule;
  private final int accumulation;
  private final double clipGradNorm;
  private final StepHooks hooks;
  private final List<Tensor> params;

  /**
   * @param accumulation micro-batches per step on this rank (gradient accumulation × pipeline micro-batches)
   * @param microSchedule how those micro-batches run: {@link MicroBatchSchedule#SEQUENTIAL} or a pipeline schedule
   */
  public Engine(Module model, Optimizer optimizer, LossFunction loss, LrSchedule schedule, int accumulation, double clipGradNorm,
                StepHooks hooks, MicroBatchSchedule microSchedule) {
    if (accumulation < 1) throw new IllegalArgumentException("gradient accumulation must be >= 1, got " + accumulation);
    this.microSchedule = microSchedule;
    this.model = model;
    this.optimizer = optimizer;
    this.loss = loss;
    this.schedule = schedule;
    this.accumulation = accumulation;
    this.clipGradNorm = clipGradNorm;
    this.hooks = hooks;
    this.params = model.parameters();
  }

  public Engine(Module model, Optimizer optimizer, LossFunction loss, LrSchedule schedule) {
    this(model, optimizer, loss, schedule, 1, 0, new StepHooks() {}, MicroBatchSchedule.SEQUENTIAL);
  }

  public Module model() { return model; }

  public Optimizer optimizer() { return optimizer; }

  /** Forward, backward and update on one global batch (this rank's share of it). */
  public StepResult trainStep(Batch batch) {
    model.train(true);
    try (var scope = backend().openStep()) {
      List<Batch> micro = batch.split(Math.min(accumulation, batch.size()));
      MicroBatchSchedule.Outcome o = microSchedule.trainStep(model, micro, batch.size(), loss, hooks);
      hooks.beforeStep();
      double norm = Math.sqrt(hooks.gradSquaredNorm(params));
      if (clipGradNorm > 0) GradClip.clipToNorm(params, clipGradNorm, norm);
      double lr = schedule.lr(optimizer.steps());
      optimizer.step(lr);
      optimizer.zeroGrad();
      hooks.afterStep();
      double[] m = hooks.reduceStepMetrics(new double[] {o.loss() * batch.size(), o.correct(), batch.size()});
      return new StepResult(m[0] / m[2], (long) m[1], (int) m[2], lr, norm);
    }
  }

  private io.colossal4j.backend.Backend backend() { return params.getFirst().backend(); }

  /** Loss and correct count on one batch, without gradients, in eval mode. */
  public StepResult evalStep(Batch batch) {
    model.eval();
    try (var scope = backend().openStep()) {
      MicroBatchSchedule.Outcome o = microSchedule.evalStep(model, batch, loss);   // summed over ranks by the trainer
      return new StepResult(o.loss(), o.correct(), batch.size(), 0, 0);
    }
  }
}
