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

  /** Forward only, under no-grad, on one batch. */
  Outcome evalStep(Module model, Batch batch, LossFunction loss);

  /** The whole model on this rank: plain gradient accumulation. */
  MicroBatchSchedule SEQUENTIAL = new MicroBatchSchedule() {
    @Override public Outcome trainStep(Module model, List<Batch> micro, int totalSamples, LossFunction loss, StepHooks hooks) {
      // Loss and top-1 count stay on the device until every backward is launched: reading them before the
      // backward would stall the host until the forward finishes and leave an accelerator idle meanwhile.
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
      return lossSum == null ? new Outcome(0, 0) : new Outcome(lossSum.item(), Math.round(correct.item()));
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
