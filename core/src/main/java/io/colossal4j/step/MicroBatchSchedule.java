package io.colossal4j.step;

import io.colossal4j.autograd.Autograd;
import io.colossal4j.autograd.GradMode;
import io.colossal4j.nn.Module;
import io.colossal4j.ops.Arith;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Tensor;
import java.util.List;

/**
 * How the micro-batches of one optimizer step become gradients on this rank. The default runs them one
 * after another through the whole model (gradient accumulation); pipeline schedules (GPipe, 1F1B,
 * interleaved) implement this over the stage this rank holds, exchanging activations with the other stages.
 */
public interface MicroBatchSchedule {
  /**
   * What this rank learned about the step: the loss as the mean over the global batch's samples handled by this
   * rank's pipeline, and the top-1 correct count. Pipeline ranks that do not hold the last stage receive both
   * from it, so every rank reports the same numbers.
   */
  record Outcome(double loss, long correct) {}

  /**
   * Forward and backward over {@code micro}; each micro-batch's loss is weighted by its share of
   * {@code totalSamples} so accumulated gradients equal those of the mean loss over all of them.
   */
  Outcome trainStep(Module model, List<Batch> micro, int totalSamples, LossFunction loss, StepHooks hooks);

  /**
   * The step's loss (as in {@link Outcome}) and top-1 correct count as one-element f64 tensors on the device,
   * not yet read back; they belong to the step and are valid until its scope closes.
   */
  record DeviceOutcome(Tensor loss, Tensor correct) {}

  /**
   * As {@link #trainStep}, leaving the loss and correct count on the device so that the caller reads them when
   * it wants (after queueing the optimizer, or the next step). Schedules that read them in their own work (a
   * pipeline shares the last stage's figures with every stage) return what they read, put back on the device.
   */
  default DeviceOutcome trainStepOnDevice(Module model, List<Batch> micro, int totalSamples, LossFunction loss, StepHooks hooks) {
    Outcome o = trainStep(model, micro, totalSamples, loss, hooks);
    var b = micro.getFirst().inputs().backend();
    return new DeviceOutcome(Tensor.of(new double[] {o.loss()}, io.colossal4j.tensor.Shape.of(1), DType.F64, b),
        Tensor.of(new double[] {o.correct()}, io.colossal4j.tensor.Shape.of(1), DType.F64, b));
  }

  /** Forward only, under no-grad, on one batch. */
  Outcome evalStep(Module model, Batch batch, LossFunction loss);

  /** The whole model on this rank: plain gradient accumulation. */
  MicroBatchSchedule SEQUENTIAL = new MicroBatchSchedule() {
    @Override public Outcome trainStep(Module model, List<Batch> micro, int totalSamples, LossFunction loss, StepHooks hooks) {
      DeviceOutcome o = trainStepOnDevice(model, micro, totalSamples, loss, hooks);
      return new Outcome(o.loss().item(), Math.round(o.correct().item()));
    }

    @Override public DeviceOutcome trainStepOnDevice(Module model, List<Batch> micro, int totalSamples, LossFunction loss, StepHooks hooks) {
      // Loss and top-1 count stay on the device: reading them before the backward would stall the host until
      // the forward finishes and leave an accelerator idle meanwhile; the caller reads them when it wants.
      if (micro.isEmpty()) throw new IllegalArgumentException("a training step needs at least one micro-batch");
      Tensor lossSum = null, correct = null;
      for (int i = 0; i < micro.size(); i++) {
        Batch mb = micro.get(i);
        Tensor out = model.forward(mb.inputs());
        Tensor l = loss.apply(out, mb.targets());
        double weight = mb.size() / (double) totalSamples;
        Tensor[] m = GradMode.noGrad(() -> new Tensor[] {
            Arith.mulScalar(Arith.cast(l.detach(), DType.F64), weight), Accuracy.correctTop1OnDevice(out.detach(), mb.targets())});
        lossSum = lossSum == null ? m[0] : sum(lossSum, m[0]);
        correct = correct == null ? m[1] : sum(correct, m[1]);
        hooks.beforeBackward(i, micro.size());
        Autograd.backward(Arith.mulScalar(l, weight));
      }
      return new DeviceOutcome(lossSum, correct);
    }

    private static Tensor sum(Tensor a, Tensor b) { return GradMode.noGrad(() -> Arith.add(a, b)); }

    @Override public Outcome evalStep(Module model, Batch batch, LossFunction loss) {
      return GradMode.noGrad(() -> {
        Tensor out = model.forward(batch.inputs());
        return new Outcome(loss.apply(out, batch.targets()).item(), Accuracy.correctTopK(out, batch.targets(), 1));
      });
    }
  };
}
