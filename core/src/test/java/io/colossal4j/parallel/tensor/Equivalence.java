package io.colossal4j.parallel.tensor;

import io.colossal4j.step.StepHooks;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.nn.Module;
import io.colossal4j.optim.Adam;
import io.colossal4j.optim.LrSchedule;
import io.colossal4j.optim.ParamGroup;
import io.colossal4j.testing.GradCheck;
import io.colossal4j.step.Batch;
import io.colossal4j.train.Engine;
import io.colossal4j.step.LossFunction;
import io.colossal4j.step.MicroBatchSchedule;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import java.util.function.ToDoubleBiFunction;

/**
 * K training steps of a model with the train.Engine, on one process and on tp ranks, with everything that
 * could differ exercised: AdamW with weight decay, two micro-batches per step (gradient accumulation) and
 * clipping by the global gradient norm (the tp run's norm from {@link TensorParallelState#gradSquaredNorm}).
 */
public final class Equivalence {
  private Equivalence() {}

  /** What a family's test supplies: the plain model, the plan, the loss (single-device or over tp), the batches. */
  public interface Family {
    Module build(CpuBackend cpu);

    void parallelize(Module model, ProcessGroup tp);

    LossFunction loss(ProcessGroup tpOrNull);

    Batch batch(CpuBackend cpu, int step);
  }

  /** Per-step losses and gradient norms, the final parameters as single-device names and shapes, and this rank's local state. */
  public record Run(double[] losses, double[] gradNorms, Map<String, double[]> params, Map<String, double[]> local, Map<String, Placement> placements) {}

  public static final int STEPS = 4;
  public static final double LR = 0.01;
  public static final double CLIP = 0.5;

  public static Run single(Family f, Supplier<CpuBackend> backends) {
    try (CpuBackend cpu = backends.get()) {
      Module model = f.build(cpu);
      Run r = train(f, cpu, model, null);
      return r;
    }
  }

  public static List<Run> tensorParallel(Family f, int tp, Supplier<CpuBackend> backends) {
    return TpTesting.ranks(tp, backends, (group, cpu) -> {
      Module model = f.build(cpu);
      f.parallelize(model, group);
      return train(f, cpu, model, group);
    });
  }

  private static Run train(Family f, CpuBackend cpu, Module model, ProcessGroup tp) {
    var opt = Adam.adamW(ParamGroup.decayAndNoDecay(model.namedParameters(), 0.05));
    StepHooks hooks = tp == null ? new StepHooks() {} : new StepHooks() {
      @Override public io.colossal4j.tensor.Tensor gradSquaredNorm(List<io.colossal4j.tensor.Tensor> params) {
        return io.colossal4j.tensor.Tensor.of(new double[] {TensorParallelState.gradSquaredNorm(tp, model)}, io.colossal4j.tensor.Shape.of(1),
            io.colossal4j.tensor.DType.F64, cpu);
      }
    };
    var engine = new Engine(model, opt, f.loss(tp), new LrSchedule.Constant(LR), 2, CLIP, hooks, MicroBatchSchedule.SEQUENTIAL);
    double[] losses = new double[STEPS], norms = new double[STEPS];
    for (int k = 0; k < STEPS; k++) {
      var result = engine.trainStep(f.batch(cpu, k));
      losses[k] = result.loss();
      norms[k] = result.gradNorm();
    }
    var full = tp == null ? model.stateDict() : TensorParallelState.gather(model, tp);
    return new Run(losses, norms, TpTesting.host(full), TpTesting.host(model.stateDict()),
        tp == null ? Map.of() : TensorParallelState.placements(model));
  }

  /**
   * Every rank's per-step losses, gradient norms and gathered parameters equal the single process's within
   * atol + rtol·|expected|; with {@code exactReplicas}, every replicated entry is bit-identical on all ranks.
   */
  public static void assertEquivalent(Run expected, List<Run> ranks, double atol, double rtol, boolean exactReplicas) {
    assertEquivalent(expected, ranks, atol, rtol, exactReplicas, (name, i) -> 0);
  }

  /**
   * As above, with a larger absolute tolerance {@code noiseAtol(name, i)} (when > 0) for parameter entries
   * that the test shows to be pure rounding noise (entries whose gradient is zero analytically).
   */
  public static void assertEquivalent(Run expected, List<Run> ranks, double atol, double rtol, boolean exactReplicas,
                                      ToDoubleBiFunction<String, Integer> noiseAtol) {
    for (int r = 0; r < ranks.size(); r++) {
      Run got = ranks.get(r);
      GradCheck.assertClose(expected.losses(), got.losses(), atol, rtol, "rank " + r + " per-step losses");
      GradCheck.assertClose(expected.gradNorms(), got.gradNorms(), atol, rtol, "rank " + r + " per-step gradient norms");
      assertEquals(List.copyOf(expected.params().keySet()), List.copyOf(got.params().keySet()), "rank " + r + " parameter names");
      for (var e : expected.params().entrySet()) {
        double[] want = e.getValue(), have = got.params().get(e.getKey());
        for (int i = 0; i < want.length; i++) {
          double tol = Math.max(atol, noiseAtol.applyAsDouble(e.getKey(), i)) + rtol * Math.abs(want[i]);
          if (!(Math.abs(want[i] - have[i]) <= tol))
            fail("rank " + r + " final " + e.getKey() + "[" + i + "] is " + have[i] + ", single process " + want[i] + " (tolerance " + tol + ")");
        }
      }
      if (exactReplicas)
        for (var e : got.placements().entrySet())
          if (e.getValue() instanceof Placement.Replicate)
            assertArrayEquals(ranks.getFirst().local().get(e.getKey()), got.local().get(e.getKey()), "replicated " + e.getKey() + " differs between rank 0 and rank " + r);
    }
  }
}
