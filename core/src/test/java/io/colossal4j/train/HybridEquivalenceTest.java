package io.colossal4j.train;

import io.colossal4j.step.Batch;

import static io.colossal4j.testing.GradCheck.assertClose;

import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.distributed.DeviceMesh;
import io.colossal4j.distributed.MeshAxis;
import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.distributed.cpu.CpuDistributed;
import io.colossal4j.models.vit.ViTConfig;
import io.colossal4j.models.vit.VisionTransformer;
import io.colossal4j.nn.ModuleContext;
import io.colossal4j.ops.Loss;
import io.colossal4j.optim.Adam;
import io.colossal4j.optim.LrSchedule;
import io.colossal4j.optim.ParamGroup;
import io.colossal4j.parallel.pipeline.Schedule;
import io.colossal4j.parallel.tensor.TensorParallelState;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.train.config.ParallelConfig;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The proof of the hybrid layouts: a small ViT (every layout) and a narrow ResNet (the layouts without tensor
 * parallelism, which has no plan for convolutions) trained K steps (AdamW, clipping at a norm that binds) on
 * dp × tp × pp in-JVM ranks gives the per-step losses and final parameters of one process accumulating the same
 * micro-batches. f64 on the reference kernels, so only summation orders differ: 1e-9 relative on losses and
 * parameters. Every layout goes through {@link HybridPlan}, the code the trainer uses.
 */
class HybridEquivalenceTest {
  static final int STEPS = 3, BATCH = 16, MICRO = 4;
  static final ViTConfig CFG = new ViTConfig(8, 4, 1, 5, 16, 2, 2, 2.0, true, false, ViTConfig.Pool.TOKEN, 0, 0, 1e-6);

  record Run(double[] losses, Map<String, Tensor> params) {}

  /** A narrow ResNet (batch norm: micro-batches have the same composition on every layout, so statistics match). */
  static final io.colossal4j.models.resnet.ResNetConfig RESNET =
      new io.colossal4j.models.resnet.ResNetConfig(false, List.of(1, 1, 1, 1), List.of(4, 8, 8, 8), 4, 1, 5, true);

  static io.colossal4j.nn.UnitModel model(String family, CpuBackend b) {
    ModuleContext ctx = new ModuleContext(b, DType.F64, 5);
    return family.equals("resnet") ? new io.colossal4j.models.resnet.ResNet(ctx, RESNET) : new VisionTransformer(ctx, CFG);
  }

  static List<Batch> data(CpuBackend b) {
    Random r = new Random(11);
    List<Batch> out = new ArrayList<>();
    for (int s = 0; s < STEPS; s++)
      out.add(new Batch(Tensor.of(r.doubles(BATCH * 64L, -1, 1).toArray(), Shape.of(BATCH, 1, 8, 8), DType.F64, b),
          Tensor.of(r.longs(BATCH, 0, 5).toArray(), Shape.of(BATCH), DType.I64, b)));
    return out;
  }

  static Engine engine(io.colossal4j.nn.Module local, int accumulation, HybridPlan plan) {
    return new Engine(local, Adam.adamW(ParamGroup.single(local.namedParameters(), 0.05)), (o, y) -> Loss.crossEntropy(o, y),
        new LrSchedule.Constant(5e-3), accumulation, 0.05, plan.hooks(), plan.schedule());
  }

  static Run single(String family, int micro) {
    CpuBackend b = CpuBackend.reference();
    io.colossal4j.nn.UnitModel m = model(family, b);
    HybridPlan plan = HybridPlan.apply(m, Optional.empty(), HybridPlan.Options.defaults(HybridPlan.schedule(new ParallelConfig.PipelineSchedule.GPipe())));
    Engine e = engine(m, micro, plan);
    double[] losses = new double[STEPS];
    List<Batch> d = data(b);
    for (int s = 0; s < STEPS; s++) losses[s] = e.trainStep(d.get(s)).loss();
    return new Run(losses, m.namedParameters());
  }

  static Run rank(String family, ProcessGroup world, int tp, int pp, Schedule schedule) {
    CpuBackend b = CpuBackend.reference();
    DeviceMesh mesh = DeviceMesh.of(world, tp, pp);
    io.colossal4j.nn.UnitModel m = model(family, b);
    HybridPlan plan = HybridPlan.apply(m, Optional.of(mesh), new HybridPlan.Options(schedule, new io.colossal4j.parallel.pipeline.SplitPolicy.Uniform(), 2048));
    Engine e = engine(plan.local(), MICRO, plan);
    int dp = mesh.size(MeshAxis.DP), dpRank = mesh.coordinate(MeshAxis.DP);
    double[] losses = new double[STEPS];
    List<Batch> d = data(b);
    for (int s = 0; s < STEPS; s++) losses[s] = e.trainStep(d.get(s).split(dp).get(dpRank)).loss();
    Map<String, Tensor> params = tp > 1 ? TensorParallelState.gather(plan.local(), mesh.group(MeshAxis.TP)) : plan.local().namedParameters();
    return new Run(losses, params);
  }

  @ParameterizedTest(name = "{0}: dp{1} x tp{2} x pp{3}, {4}")
  @CsvSource({
      "vit, 2, 1, 1, 1f1b", "vit, 1, 2, 1, 1f1b", "vit, 1, 1, 2, gpipe", "vit, 1, 1, 2, 1f1b", "vit, 1, 1, 2, interleaved",
      "vit, 2, 2, 1, 1f1b", "vit, 1, 2, 2, 1f1b", "vit, 2, 2, 2, 1f1b", "vit, 2, 1, 2, interleaved",
      "resnet, 2, 1, 1, 1f1b", "resnet, 1, 1, 2, gpipe", "resnet, 1, 1, 2, 1f1b", "resnet, 2, 1, 2, interleaved"})
  void layoutMatchesOneProcess(String family, int dp, int tp, int pp, String scheduleName) throws Exception {
    Schedule schedule = HybridPlan.schedule(switch (scheduleName) {
      case "gpipe" -> new ParallelConfig.PipelineSchedule.GPipe();
      case "interleaved" -> new ParallelConfig.PipelineSchedule.Interleaved(2);
      default -> new ParallelConfig.PipelineSchedule.OneFOneB();
    });
    Run ref = single(family, dp * MICRO);
    List<ProcessGroup> world = CpuDistributed.threads(dp * tp * pp);
    ExecutorService pool = Executors.newFixedThreadPool(world.size());
    try {
      List<Future<Run>> futures = new ArrayList<>();
      for (ProcessGroup g : world) futures.add(pool.submit(() -> rank(family, g, tp, pp, schedule)));
      for (int r = 0; r < futures.size(); r++) {
        Run got = futures.get(r).get();
        assertClose(ref.losses(), got.losses(), 0, 1e-9, "rank " + r + " per-step loss");
        for (var e : got.params().entrySet())
          assertClose(ref.params().get(e.getKey()).toDoubleArray(), e.getValue().toDoubleArray(), 1e-12, 1e-9, "rank " + r + " parameter " + e.getKey());
      }
    } finally {
      pool.shutdownNow();
      world.forEach(ProcessGroup::close);
    }
  }
}
