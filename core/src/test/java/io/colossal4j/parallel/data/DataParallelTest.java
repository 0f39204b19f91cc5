package io.colossal4j.parallel.data;

import io.colossal4j.step.StepHooks;

import static io.colossal4j.testing.GradCheck.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.distributed.cpu.CpuDistributed;
import io.colossal4j.models.vit.ViTConfig;
import io.colossal4j.models.vit.VisionTransformer;
import io.colossal4j.nn.ModuleContext;
import io.colossal4j.nn.UnitModel;
import io.colossal4j.ops.Loss;
import io.colossal4j.optim.Adam;
import io.colossal4j.optim.LrSchedule;
import io.colossal4j.optim.ParamGroup;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.step.Batch;
import io.colossal4j.train.Engine;
import io.colossal4j.step.MicroBatchSchedule;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

/**
 * Data parallelism on 2 in-JVM ranks reproduces one process: same per-step (global) losses and final parameters
 * as a single process that accumulates the same two micro-batches. f64 on the reference kernels, so the only
 * difference is the order of one addition per gradient element (g1 + g2 vs. 0.5·g1 + 0.5·g2 summed in autograd):
 * tolerance 1e-10 relative. Also: identical parameters on every rank, several buckets, accumulation without sync.
 */
class DataParallelTest {
  static final int STEPS = 4, BATCH = 8;
  static final ViTConfig CFG = new ViTConfig(8, 4, 1, 5, 16, 2, 2, 2.0, true, false, ViTConfig.Pool.TOKEN, 0, 0, 1e-6);

  record Run(double[] losses, Map<String, Tensor> params) {}

  static List<Batch> batches(CpuBackend b) {
    Random r = new Random(7);
    List<Batch> out = new ArrayList<>();
    for (int s = 0; s < STEPS; s++)
      out.add(new Batch(Tensor.of(r.doubles(BATCH * 64L, -1, 1).toArray(), Shape.of(BATCH, 1, 8, 8), DType.F64, b),
          Tensor.of(r.longs(BATCH, 0, 5).toArray(), Shape.of(BATCH), DType.I64, b)));
    return out;
  }

  static Engine engine(UnitModel m, int accumulation, StepHooks hooks) {
    return new Engine(m, Adam.adamW(ParamGroup.single(m.namedParameters(), 0.05)), (o, y) -> Loss.crossEntropy(o, y),
        new LrSchedule.Constant(1e-2), accumulation, 1.0, hooks, MicroBatchSchedule.SEQUENTIAL);
  }

  private static Run reference;

  /** The single-process run, computed once for the tests of this class. */
  static synchronized Run single() {
    if (reference == null) reference = singleRun();
    return reference;
  }

  static Run singleRun() {
    CpuBackend b = CpuBackend.reference();
    UnitModel m = new VisionTransformer(new ModuleContext(b, DType.F64, 3), CFG);
    Engine e = engine(m, 2, new StepHooks() {});
    double[] losses = new double[STEPS];
    List<Batch> data = batches(b);
    for (int s = 0; s < STEPS; s++) losses[s] = e.trainStep(data.get(s)).loss();
    return new Run(losses, m.namedParameters());
  }

  static Run rank(ProcessGroup g, long bucketBytes, int accumulation, boolean shared) {
    CpuBackend b = CpuBackend.reference();
    UnitModel m = new VisionTransformer(new ModuleContext(b, DType.F64, 3 + g.rank()), CFG);  // different init: rank 0's is broadcast
    DataParallel dp = new DataParallel(m, g, bucketBytes);
    if (bucketBytes < 8192) assertTrue(dp.bucketCount() > 1, "small buckets: several of them");
    assertEquals(shared ? dp.bucketCount() : 0, dp.sharedBucketCount(), "buckets in shared buffers");
    Engine e = engine(m, accumulation, dp);
    double[] losses = new double[STEPS];
    List<Batch> data = batches(b);
    for (int s = 0; s < STEPS; s++) {
      Batch full = data.get(s);
      Batch mine = full.split(2).get(g.rank());
      losses[s] = e.trainStep(mine).loss();
    }
    return new Run(losses, m.namedParameters());
  }

  static List<Run> ranks(long bucketBytes, int accumulation) throws Exception { return ranks(bucketBytes, accumulation, false); }

  /** shared: the group has shared memory, so the buckets are shared buffers reduced in place. */
  static List<Run> ranks(long bucketBytes, int accumulation, boolean shared) throws Exception {
    List<ProcessGroup> groups = CpuDistributed.threads(2, new CpuDistributed.ThreadOptions(java.time.Duration.ofMinutes(10), shared));
    ExecutorService pool = Executors.newFixedThreadPool(2);
    try {
      List<Future<Run>> f = new ArrayList<>();
      for (ProcessGroup g : groups) f.add(pool.submit(() -> rank(g, bucketBytes, accumulation, shared)));
      List<Run> out = new ArrayList<>();
      for (Future<Run> x : f) out.add(x.get());
      return out;
    } finally {
      pool.shutdownNow();
      groups.forEach(ProcessGroup::close);
    }
  }

  @Test void twoRanksEqualOneProcess() throws Exception {
    Run ref = single();
    List<Run> dp = ranks(4096, 1);
    for (Run r : dp) {
      assertClose(ref.losses(), r.losses(), 0, 1e-10, "per-step global loss");
      ref.params().forEach((k, v) -> assertClose(v.toDoubleArray(), r.params().get(k).toDoubleArray(), 1e-12, 1e-10, "parameter " + k));
    }
    dp.get(0).params().forEach((k, v) -> assertClose(v.toDoubleArray(), dp.get(1).params().get(k).toDoubleArray(), 0, 0, "ranks agree on " + k));
  }

  /** The same with the buckets in shared buffers (all-reduced in place), with and without accumulation. */
  @Test void sharedBucketsEqualOneProcess() throws Exception {
    Run ref = single();
    for (int accumulation : new int[] {1, 2}) {
      List<Run> dp = ranks(4096, accumulation, true);
      for (Run r : dp) {
        if (accumulation == 1) assertClose(ref.losses(), r.losses(), 0, 1e-10, "per-step global loss");
        ref.params().forEach((k, v) -> assertClose(v.toDoubleArray(), r.params().get(k).toDoubleArray(), 1e-12, 1e-9, "parameter " + k));
      }
      dp.get(0).params().forEach((k, v) -> assertClose(v.toDoubleArray(), dp.get(1).params().get(k).toDoubleArray(), 0, 0, "ranks agree on " + k));
    }
  }

  @Test void accumulationOnEachRankStillMatches() throws Exception {
    // each rank splits its half again into 2 micro-batches: no sync on the first, one on the second
    Run ref = single();
    List<Run> dp = ranks(1 << 20, 2);
    assertEquals(STEPS, dp.get(0).losses().length);
    // the single-process twin accumulates 2 micro-batches of 4; here 4 of 2 (same mean loss, same gradient)
    ref.params().forEach((k, v) -> assertClose(v.toDoubleArray(), dp.get(0).params().get(k).toDoubleArray(), 1e-12, 1e-9, "parameter " + k));
  }
}
