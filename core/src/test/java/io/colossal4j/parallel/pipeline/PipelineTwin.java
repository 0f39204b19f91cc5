package io.colossal4j.parallel.pipeline;

import io.colossal4j.step.StepHooks;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.colossal4j.backend.Backend;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.distributed.RankThreads;
import io.colossal4j.distributed.cpu.CpuDistributed;
import io.colossal4j.nn.Module;
import io.colossal4j.nn.UnitModel;
import io.colossal4j.optim.Optimizer;
import io.colossal4j.optim.ParamGroup;
import io.colossal4j.optim.Sgd;
import io.colossal4j.step.Batch;
import io.colossal4j.train.Engine;
import io.colossal4j.step.LossFunction;
import io.colossal4j.step.MicroBatchSchedule;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * A pipeline run and its single-process twin: the same model (same seed), the same batches split into the same
 * micro-batches, the same optimizer. The twin runs {@link MicroBatchSchedule#SEQUENTIAL} (gradient accumulation),
 * so BatchNorm sees the same micro-batches in the same order. Each rank of the pipeline builds the whole model on
 * its own backend and keeps only its stage.
 */
final class PipelineTwin {
  private PipelineTwin() {}

  /** What a run produced: per-step losses and correct counts, and the final state dict (slices for a stage). */
  record Run(double[] losses, long[] correct, Map<String, double[]> state, int peakInFlight, double evalLoss, long evalCorrect) {}

  /** The model, the data of each step on a given backend, and the loss. */
  record Setup(Function<Backend, UnitModel> model, Function<Backend, List<Batch>> steps, LossFunction loss, int microBatches, boolean reference) {
    Setup(Function<Backend, UnitModel> model, Function<Backend, List<Batch>> steps, LossFunction loss, int microBatches) {
      this(model, steps, loss, microBatches, false);
    }

    /** The scalar reference kernels (f64-capable, deterministic) or the fast kernels on one thread. */
    CpuBackend backend() { return reference ? CpuBackend.reference() : CpuBackend.create(1); }
  }

  static final double LR = 0.05, MOMENTUM = 0.9;

  static Optimizer optimizer(Module m) { return new Sgd(ParamGroup.single(m.namedParameters(), 0), MOMENTUM, 0, false); }

  static Run single(Setup s) {
    try (CpuBackend cpu = s.backend()) {
      UnitModel model = s.model().apply(cpu);
      return train(model, MicroBatchSchedule.SEQUENTIAL, s.steps().apply(cpu), s.loss(), s.microBatches());
    }
  }

  static List<Run> pipeline(Setup s, int p, Schedule schedule, SplitPolicy policy) {
    List<ProcessGroup> groups = CpuDistributed.threads(p);
    try {
      return RankThreads.run(groups, 120, g -> {
        try (CpuBackend cpu = s.backend()) {
          UnitModel model = s.model().apply(cpu);
          Split split = SplitPolicy.split(policy, model.units(), p * schedule.chunks());
          Stage stage = Stage.of(model, split, p, g.rank());
          PipelineRunner runner = new PipelineRunner(g, stage, schedule);
          Run r = train(stage, runner, s.steps().apply(cpu), s.loss(), s.microBatches());
          return new Run(r.losses(), r.correct(), r.state(), runner.peakInFlight(), r.evalLoss(), r.evalCorrect());
        }
      });
    } finally {
      groups.forEach(ProcessGroup::close);
    }
  }

  private static Run train(Module model, MicroBatchSchedule schedule, List<Batch> steps, LossFunction loss, int m) {
    Optimizer opt = optimizer(model);
    double[] losses = new double[steps.size()];
    long[] correct = new long[steps.size()];
    List<String> syncs = new ArrayList<>();
    for (int i = 0; i < steps.size(); i++) {
      Batch b = steps.get(i);
      model.train(true);
      var hooks = new StepHooks() {
        @Override public void beforeBackward(int micro, int count) { if (micro == count - 1) syncs.add("step"); }
      };
      var o = schedule.trainStep(model, b.split(m), b.size(), loss, hooks);
      losses[i] = o.loss();
      correct[i] = o.correct();
      opt.step(LR);
      opt.zeroGrad();
    }
    assertEquals(steps.size(), syncs.size(), "beforeBackward reports the last backward once per step");
    model.eval();
    var eval = schedule.evalStep(model, steps.getLast(), loss);  // forward only, the uneven last batch
    Map<String, double[]> state = new LinkedHashMap<>();
    model.stateDict().forEach((k, t) -> state.put(k, t.toDoubleArray()));
    return new Run(losses, correct, state, 0, eval.loss(), eval.correct());
  }

  /**
   * Asserts that every rank reports the twin's training and evaluation losses and correct counts, and that the stages' state dicts
   * are disjoint slices whose union is the twin's, each value within {@code rtol}·|x| + {@code atol}.
   */
  static void assertSame(Run single, List<Run> ranks, double rtol, double atol, String what) {
    Map<String, double[]> union = new LinkedHashMap<>();
    for (int r = 0; r < ranks.size(); r++) {
      Run run = ranks.get(r);
      for (int i = 0; i < single.losses().length; i++) {
        assertEquals(single.losses()[i], run.losses()[i], rtol * Math.abs(single.losses()[i]), what + ": loss of step " + i + " on rank " + r);
        assertEquals(single.correct()[i], run.correct()[i], what + ": correct count of step " + i + " on rank " + r);
      }
      assertEquals(single.evalLoss(), run.evalLoss(), rtol * Math.abs(single.evalLoss()), what + ": evaluation loss on rank " + r);
      assertEquals(single.evalCorrect(), run.evalCorrect(), what + ": evaluation correct count on rank " + r);
      for (var e : run.state().entrySet())
        if (union.put(e.getKey(), e.getValue()) != null) fail(what + ": " + e.getKey() + " is held by two stages");
    }
    assertEquals(single.state().keySet(), union.keySet(), what + ": the stages hold exactly the model's state");
    for (var e : single.state().entrySet()) {
      double[] want = e.getValue(), got = union.get(e.getKey());
      for (int i = 0; i < want.length; i++)
        if (!(Math.abs(want[i] - got[i]) <= atol + rtol * Math.abs(want[i])))
          fail(what + ": " + e.getKey() + "[" + i + "] is " + got[i] + ", single process " + want[i]);
    }
    assertTrue(single.losses().length > 0);
  }
}
