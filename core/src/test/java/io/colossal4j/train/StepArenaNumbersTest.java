package io.colossal4j.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.models.ModelSpec;
import io.colossal4j.models.Zoo;
import io.colossal4j.nn.ModuleContext;
import io.colossal4j.nn.UnitModel;
import io.colossal4j.ops.Loss;
import io.colossal4j.optim.Adam;
import io.colossal4j.optim.LrSchedule;
import io.colossal4j.optim.ParamGroup;
import io.colossal4j.step.Batch;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import org.junit.jupiter.api.Test;

/**
 * Placement changes no number: Engine steps of the default job's model ({@code vit_convstem_28}, the fast kernels on
 * two threads) whose activations come from the step arena, reusing freed blocks within each step, give bit for bit
 * the losses and parameters of the same steps run with every tensor from the caching allocator (no arena, nothing
 * released early). Tolerance 0: the kernels' results do not depend on where their operands lie (no alignment
 * peeling; summation orders fixed by shapes and chunk counts), so any difference means a block was handed out while
 * still in use.
 */
class StepArenaNumbersTest {
  static final int BATCH = 16, STEPS = 3;

  @Test void stepsFromTheArenaEqualStepsWithoutIt() throws Exception {
    try (CpuBackend arena = CpuBackend.create(2); CpuBackend plain = CpuBackend.create(2)) {
      List<double[]> withArena = run(arena, false);
      List<double[]> without = run(plain, true);
      assertEquals(without.size(), withArena.size());
      for (int i = 0; i < without.size(); i++) assertArrayEquals(without.get(i), withArena.get(i), 0.0, "entry " + i);
      assertTrue(arena.stepArenaReusedBytes() > 0, "the arena reused freed blocks within the steps");
      assertEquals(0, plain.stepArenaReusedBytes(), "the plain run never used the arena");
    }
  }

  /** The step losses, then every parameter after the last step, in name order. */
  private static List<double[]> run(CpuBackend cpu, boolean bypassArena) throws Exception {
    UnitModel model = Zoo.build(ModuleContext.of(cpu, 0), ModelSpec.of("vit_convstem_28", 10));
    Engine engine = new Engine(model, Adam.adamW(ParamGroup.single(model.namedParameters(), 0.05)),
        (o, t) -> Loss.crossEntropy(o, t), new LrSchedule.Constant(1e-3));
    Random rnd = new Random(7);
    double[] x = new double[BATCH * 784];
    for (int i = 0; i < x.length; i++) x[i] = rnd.nextGaussian();
    Batch batch = new Batch(Tensor.of(x, Shape.of(BATCH, 1, 28, 28), DType.F32, cpu),
        Tensor.of(rnd.longs(BATCH, 0, 10).toArray(), Shape.of(BATCH), DType.I64, cpu));
    List<double[]> out = new ArrayList<>();
    Runnable steps = () -> {
      for (int s = 0; s < STEPS; s++) out.add(new double[] {engine.trainStep(batch).loss()});
    };
    if (bypassArena) whileAnotherThreadHoldsTheStep(cpu, steps);
    else steps.run();
    for (Map.Entry<String, Tensor> e : new java.util.TreeMap<>(model.namedParameters()).entrySet()) out.add(e.getValue().toDoubleArray());
    return out;
  }

  /**
   * Runs {@code body} while another thread has a step open on {@code cpu}: a backend has one step at a time, so the
   * body's own openStep is a no-op and every tensor it allocates comes from the caching allocator.
   */
  private static void whileAnotherThreadHoldsTheStep(CpuBackend cpu, Runnable body) throws Exception {
    CountDownLatch opened = new CountDownLatch(1), done = new CountDownLatch(1);
    Thread holder = new Thread(() -> {
      try (var scope = cpu.openStep()) {
        opened.countDown();
        done.await();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    });
    holder.start();
    opened.await();
    try {
      body.run();
    } finally {
      done.countDown();
      holder.join();
    }
  }
}
