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

  /** Forward, backward and update on one global batch (this rank's share of it); waits for the step's figures. */
  public StepResult trainStep(Batch batch) { return trainStepAsync(batch).result(); }

  /**
   * A step whose work is queued and whose figures are read back when {@link #result} is first called. On a GPU
   * nothing in the step waits for the device unless gradient clipping or f16 loss scaling needs a number on the
   * host before the update, so a caller that queues the next step before reading this one's result keeps the
   * device busy across the step boundary. Results must be read in step order on every rank (data parallelism
   * reduces them collectively).
   */
  public static final class PendingStep {
    private final io.colossal4j.backend.Backend.HostValues values;
    private final double lr, norm;
    private final boolean skipped;
    private StepResult result;

    private PendingStep(io.colossal4j.backend.Backend.HostValues values, double lr, double norm, boolean skipped) {
      this.values = values;
      this.lr = lr;
      this.norm = norm;
      this.skipped = skipped;
    }

    /** The step's loss, correct count, samples, learning rate and gradient norm (waits for them once). */
    public synchronized StepResult result() {
      if (result == null) {
        double[] v = values.get();   // {loss·samples, correct, samples, squared norm}
        double n = Double.isNaN(norm) ? Math.sqrt(v[3]) : norm;
        result = new StepResult(v[0] / v[2], Math.round(v[1]), (int) Math.round(v[2]), lr, n, skipped);
      }
      return result;
    }
  }

  /** Forward, backward and update on one global batch (this rank's share of it), its figures read later (see {@link PendingStep}). */
  public PendingStep trainStepAsync(Batch batch) {
    model.train(true);
    io.colossal4j.backend.Backend device = backend();
    try (var scope = device.openStep()) {
      List<Batch> micro = batch.split(Math.min(accumulation, batch.size()));
      double scale = precision.lossScale();
      LossFunction scaled = (out, y) -> Autocast.disabled(() -> {
        Tensor l = loss.apply(lossInput(out), y);
        return scale == 1 ? l : Arith.mulScalar(l, scale);
      });
      MicroBatchSchedule.DeviceOutcome o = precision.forward(() -> microSchedule.trainStepOnDevice(model, micro, batch.size(), scaled, hooks));
      hooks.beforeStep();
      boolean skipped = precision instanceof MixedPrecision.Autocast16(DType d, DynamicLossScaler s) && s != null
          && s.unscale(named, stepsRun) instanceof DynamicLossScaler.Outcome.Skipped;
      Tensor normSquared = hooks.gradSquaredNorm(params);
      double lr = schedule.lr(optimizer.steps());
      double norm = Double.NaN;   // read with the other figures unless clipping needs it now
      if (!skipped) {
        if (clipGradNorm > 0) {
          norm = Math.sqrt(normSquared.item());
          GradClip.clipToNorm(params, clipGradNorm, norm);
        }
        optimizer.step(lr);
      }
      clearGradients();
      hooks.afterStep();
      stepsRun++;
      // {loss·samples (unscaled), correct, samples} on the device, summed over the data-parallel ranks
      var k = device.kernels();
      Tensor sums = Tensor.empty(io.colossal4j.tensor.Shape.of(3), DType.F64, device, io.colossal4j.tensor.MemoryCategory.TEMPORARY);
      Tensor lossSlot = slot(sums, 0);
      if (scale == 1) k.binaryScalar(io.colossal4j.backend.BinaryOp.MUL, slot(o.loss(), 0), batch.size(), lossSlot);
      else {
        k.binaryScalar(io.colossal4j.backend.BinaryOp.DIV, slot(o.loss(), 0), scale, lossSlot);
        k.binaryScalar(io.colossal4j.backend.BinaryOp.MUL, lossSlot, batch.size(), lossSlot);
      }
      k.copy(slot(o.correct(), 0), slot(sums, 1));
      k.fill(slot(sums, 2), batch.size());
      Tensor reduced = hooks.reduceStepMetrics(sums);
      return new PendingStep(device.readLater(reduced, normSquared), lr, norm, skipped);
    }
  }

  /** Element i of a contiguous tensor (a vector, or a scalar with i = 0) as a one-element vector. */
  private static Tensor slot(Tensor v, int i) { return v.view(io.colossal4j.tensor.Shape.of(1), new long[] {1}, v.offset() + i); }

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
