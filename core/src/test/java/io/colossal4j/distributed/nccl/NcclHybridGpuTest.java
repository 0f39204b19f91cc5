package io.colossal4j.distributed.nccl;

import static io.colossal4j.testing.GradCheck.assertClose;

import io.colossal4j.backend.Backend;
import io.colossal4j.distributed.DeviceMesh;
import io.colossal4j.distributed.MeshAxis;
import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.models.vit.ViTConfig;
import io.colossal4j.models.vit.VisionTransformer;
import io.colossal4j.nn.ModuleContext;
import io.colossal4j.ops.Loss;
import io.colossal4j.optim.LrSchedule;
import io.colossal4j.optim.ParamGroup;
import io.colossal4j.optim.Sgd;
import io.colossal4j.parallel.pipeline.Schedule;
import io.colossal4j.parallel.pipeline.SplitPolicy;
import io.colossal4j.parallel.tensor.TensorParallelState;
import io.colossal4j.step.Batch;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.train.Engine;
import io.colossal4j.train.HybridPlan;
import java.time.Duration;
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
 * The hybrid layouts on two GPUs over NCCL: a small ViT trained K steps (SGD with momentum, clipping at a norm
 * that binds) on dp2, tp2 and pp2 (each schedule) gives the per-step losses and final parameters of one GPU
 * accumulating the same micro-batches, through {@link HybridPlan} as the trainer uses it.
 *
 * <p>Tolerance, f32: the layouts sum in other orders (NCCL averages two half-batch gradients where one GPU
 * accumulates micro-batches; matmuls of half the batch or half the width pick other cuBLASLt splits), each
 * rounding at 2^-24 relative; over 3 steps of SGD the parameters move by lr·g, so differences stay near 1e-7
 * relative. 1e-5 relative (plus 1e-6 absolute for values near zero) leaves room for that and still fails on any
 * wrong synchronisation (a missing all-reduce changes losses at the 1e-2 level).
 */
class NcclHybridGpuTest {
  static final int STEPS = 3, BATCH = 16, MICRO = 4;
  static final ViTConfig CFG = new ViTConfig(8, 4, 1, 5, 16, 2, 2, 2.0, true, false, ViTConfig.Pool.TOKEN, 0, 0, 1e-6);

  record Run(double[] losses, Map<String, double[]> params) {}

  static List<Batch> data(Backend b) {
    Random r = new Random(11);
    List<Batch> out = new ArrayList<>();
    for (int s = 0; s < STEPS; s++)
      out.add(new Batch(Tensor.of(r.doubles(BATCH * 64L, -1, 1).toArray(), Shape.of(BATCH, 1, 8, 8), DType.F32, b),
          Tensor.of(r.longs(BATCH, 0, 5).toArray(), Shape.of(BATCH), DType.I64, b)));
    return out;
  }

  static Engine engine(io.colossal4j.nn.Module local, int accumulation, HybridPlan plan) {
    return new Engine(local, new Sgd(ParamGroup.single(local.namedParameters(), 0.0), 0.9, 0, false), (o, y) -> Loss.crossEntropy(o, y),
        new LrSchedule.Constant(0.05), accumulation, 0.5, plan.hooks(), plan.schedule());
  }

  static Map<String, double[]> host(Map<String, Tensor> params) {
    Map<String, double[]> out = new java.util.TreeMap<>();
    params.forEach((k, v) -> out.put(k, v.toDoubleArray()));
    return out;
  }

  static Run single(int micro) {
    Backend b = TwoGpus.gpus()[0];
    VisionTransformer m = new VisionTransformer(new ModuleContext(b, DType.F32, 5), CFG);
    HybridPlan plan = HybridPlan.apply(m, Optional.empty(), HybridPlan.Options.defaults(new Schedule.GPipe()));
    Engine e = engine(m, micro, plan);
    double[] losses = new double[STEPS];
    List<Batch> d = data(b);
    for (int s = 0; s < STEPS; s++) losses[s] = e.trainStep(d.get(s)).loss();
    return new Run(losses, host(m.namedParameters()));
  }

  static Run rank(ProcessGroup world, int tp, int pp, Schedule schedule) {
    Backend b = ((NcclProcessGroup) world).backend();
    DeviceMesh mesh = DeviceMesh.of(world, tp, pp);
    VisionTransformer m = new VisionTransformer(new ModuleContext(b, DType.F32, 5), CFG);
    HybridPlan plan = HybridPlan.apply(m, Optional.of(mesh), new HybridPlan.Options(schedule, new SplitPolicy.Uniform(), 2048));
    Engine e = engine(plan.local(), MICRO, plan);
    int dp = mesh.size(MeshAxis.DP), dpRank = mesh.coordinate(MeshAxis.DP);
    double[] losses = new double[STEPS];
    List<Batch> d = data(b);
    for (int s = 0; s < STEPS; s++) losses[s] = e.trainStep(d.get(s).split(dp).get(dpRank)).loss();
    Map<String, Tensor> params = tp > 1 ? TensorParallelState.gather(plan.local(), mesh.group(MeshAxis.TP)) : plan.local().namedParameters();
    return new Run(losses, host(params));
  }

  @ParameterizedTest(name = "dp{0} x tp{1} x pp{2}, {3}")
  @CsvSource({"2, 1, 1, 1f1b", "1, 2, 1, 1f1b", "1, 1, 2, gpipe", "1, 1, 2, 1f1b", "1, 1, 2, interleaved"})
  void layoutMatchesOneGpu(int dp, int tp, int pp, String scheduleName) throws Exception {
    Schedule schedule = switch (scheduleName) {
      case "gpipe" -> new Schedule.GPipe();
      case "interleaved" -> new Schedule.Interleaved(2);
      default -> new Schedule.OneFOneB();
    };
    Run ref = single(dp * MICRO);
    List<ProcessGroup> world = TwoGpus.worlds(Duration.ofSeconds(120));
    ExecutorService pool = Executors.newFixedThreadPool(world.size());
    try {
      List<Future<Run>> futures = new ArrayList<>();
      for (ProcessGroup g : world) futures.add(pool.submit(() -> rank(g, tp, pp, schedule)));
      for (int r = 0; r < futures.size(); r++) {
        Run got = futures.get(r).get(180, java.util.concurrent.TimeUnit.SECONDS);
        assertClose(ref.losses(), got.losses(), 0, 1e-5, "rank " + r + " per-step loss");
        for (var e : got.params().entrySet())
          assertClose(ref.params().get(e.getKey()), e.getValue(), 1e-6, 1e-5, "rank " + r + " parameter " + e.getKey());
      }
    } finally {
      pool.shutdownNow();
      world.reversed().forEach(ProcessGroup::close);
    }
  }
}
