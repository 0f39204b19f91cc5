package io.colossal4j.train;

import io.colossal4j.step.Batch;
import io.colossal4j.step.LossFunction;
import io.colossal4j.step.MicroBatchSchedule;
import io.colossal4j.step.StepHooks;

import io.colossal4j.nn.Module;
import io.colossal4j.optim.GradClip;
import io.colossal4j.optim.LrSchedule;
import io.colossal4j.optim.Optimizer;
import io.colossal4j.autograd.Autocast;
import io.colossal4j.ops.Arith;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.train.precision.DynamicLossScaler;
import io.colossal4j.train.precision.MixedPrecision;
import java.util.List;
import java.util.Map;

/**
 * Wraps model, optimizer, loss and learning-rate schedule: one call per optimizer step. A global batch is
 * split into {@code accumulation} micro-batches; each contributes loss/accumulation to the gradients, so
 * the update equals one step on the whole batch. Parallel strategies plug in around this through the
 * model's gradient-ready hooks and {@link io.colossal4j.step.StepHooks}, never by changing model code.
 */
public final class Engine {
  /**
   * What one step reports. {@code skipped}: the update was not applied (an f16 gradient overflow, already
   * reported to the precision policy's listener); the loss is the true (unscaled) loss either way.
   */
  public record StepResult(double loss, long correct, int samples, double lr, double gradNorm, boolean skipped) {}

  private final Module model;
  private final Optimizer optimizer;
  private final LossFunction loss;
  private final LrSchedule schedule;
  private final MicroBatchSchedule microSchedule;
  private final int accumulation;
  private final double clipGradNorm;
  private final StepHooks hooks;
  private final List<Tensor> params;
  private final Map<String, Tensor> named;
  private MixedPrecision precision = MixedPrecision.full();
  private long stepsRun;

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
    this.named = model.namedParameters();
  }

  /**
   * Trains under {@code p} from the next step on (parameters must be f32 master weights for autocast).
   * Set once, before the first step.
   */
  public Engine withPrecision(MixedPrecision p) {
    if (stepsRun > 0) throw new IllegalStateException("precision is set before the first step, " + stepsRun + " steps have run");
    if (p instanceof MixedPrecision.Autocast16)
      for (var e : named.entrySet())
        if (e.getValue().dtype() != DType.F32)
          throw new IllegalArgumentException("mixed precision keeps f32 master weights; parameter " + e.getKey() + " is " + e.getValue().dtype());
    this.precision = java.util.Objects.requireNonNull(p, "precision");
    return this;
  }

  public MixedPrecision precision() { return precision; }

  /** Steps run so far (the step number an overflow report names); a resumed trainer sets it. */
  public long stepsRun() { return stepsRun; }

  public void resumeAt(long steps) { this.stepsRun = steps; }

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
      double scale = precision.lossScale();
      LossFunction scaled = (out, y) -> Autocast.disabled(() -> {
        Tensor l = loss.apply(lossInput(out), y);
        return scale == 1 ? l : Arith.mulScalar(l, scale);
      });
      MicroBatchSchedule.Outcome o = precision.forward(() -> microSchedule.trainStep(model, micro, batch.size(), scaled, hooks));
      hooks.beforeStep();
      boolean skipped = precision instanceof MixedPrecision.Autocast16(DType d, DynamicLossScaler s) && s != null
          && s.unscale(named, stepsRun) instanceof DynamicLossScaler.Outcome.Skipped;
      double norm = Math.sqrt(hooks.gradSquaredNorm(params));
      double lr = schedule.lr(optimizer.steps());
      if (!skipped) {
        if (clipGradNorm > 0) GradClip.clipToNorm(params, clipGradNorm, norm);
        optimizer.step(lr);
      }
      clearGradients();
      hooks.afterStep();
      stepsRun++;
      double[] m = hooks.reduceStepMetrics(new double[] {o.loss() / scale * batch.size(), o.correct(), batch.size()});
      return new StepResult(m[0] / m[2], (long) m[1], (int) m[2], lr, norm, skipped);
    }
  }

  /**
   * Between steps a GPU releases its gradients (PyTorch's {@code zero_grad(set_to_none=True)}): the caching allocator
   * hands the same blocks back next step, the forward peaks without them, and linear/layer-norm backwards install a
   * fresh gradient without a copy; the CPU keeps its buffers and zeroes them lazily, so a steady step allocates nothing.
   */
  private void clearGradients() {
    if (backend().device().kind() == io.colossal4j.tensor.Device.Kind.CPU) optimizer.zeroGrad();
    else optimizer.releaseGrads();
  }

  /** Under autocast the loss is computed in f32 from 16-bit outputs (as PyTorch's autocast runs cross entropy in f32). */
  private Tensor lossInput(Tensor out) {
    boolean half = out.dtype() == DType.BF16 || out.dtype() == DType.F16;
    return precision instanceof MixedPrecision.Autocast16 && half ? Arith.cast(out, DType.F32) : out;
  }

  private io.colossal4j.backend.Backend backend() { return params.getFirst().backend(); }

  /** Loss and correct count on one batch, without gradients, in eval mode. */
  public StepResult evalStep(Batch batch) {
    model.eval();
    try (var scope = backend().openStep()) {
      LossFunction outside = (out, y) -> Autocast.disabled(() -> loss.apply(lossInput(out), y));
      MicroBatchSchedule.Outcome o = precision.forward(() -> microSchedule.evalStep(model, batch, outside));   // summed over ranks by the trainer
      return new StepResult(o.loss(), o.correct(), batch.size(), 0, 0, false);
    }
  }
}
