package io.colossal4j.parallel.pipeline;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.distributed.DeviceMesh;
import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.distributed.Reduction;
import io.colossal4j.distributed.Work;
import io.colossal4j.distributed.cpu.CpuDistributed;
import io.colossal4j.models.vit.ViTConfig;
import io.colossal4j.models.vit.VisionTransformer;
import io.colossal4j.nn.ModuleContext;
import io.colossal4j.ops.Loss;
import io.colossal4j.optim.LrSchedule;
import io.colossal4j.optim.ParamGroup;
import io.colossal4j.optim.Sgd;
import io.colossal4j.step.Batch;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.train.Engine;
import io.colossal4j.train.HybridPlan;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The NCCL process group matches point-to-point messages in issue order, not by tag. This checks, on the CPU group,
 * that every pipeline schedule issues the sends from rank a to rank b in exactly the order in which b issues its
 * receives from a (so the tags would match if ignored), over training and evaluation steps.
 */
class P2pOrderTest {
  static final ViTConfig CFG = new ViTConfig(8, 4, 1, 5, 16, 2, 2, 2.0, true, false, ViTConfig.Pool.TOKEN, 0, 0, 1e-6);

  /** Records (peer, tag) of every send and receive, per direction, and delegates. */
  record Recording(ProcessGroup g, Map<String, List<Integer>> log) implements ProcessGroup {
    private void add(String key, int tag) { log.computeIfAbsent(key, k -> Collections.synchronizedList(new ArrayList<>())).add(tag); }

    @Override public int rank() { return g.rank(); }
    @Override public int size() { return g.size(); }
    @Override public List<Integer> worldRanks() { return g.worldRanks(); }
    @Override public String name() { return g.name(); }
    @Override public Work allReduceAsync(Tensor t, Reduction op) { return g.allReduceAsync(t, op); }
    @Override public Work reduceScatterAsync(Tensor out, Tensor in, Reduction op) { return g.reduceScatterAsync(out, in, op); }
    @Override public Work allGatherAsync(Tensor out, Tensor in) { return g.allGatherAsync(out, in); }
    @Override public Work broadcastAsync(Tensor t, int root) { return g.broadcastAsync(t, root); }
    @Override public Work reduceAsync(Tensor t, int root, Reduction op) { return g.reduceAsync(t, root, op); }
    @Override public Work allToAllAsync(Tensor out, Tensor in) { return g.allToAllAsync(out, in); }
    @Override public Work barrierAsync() { return g.barrierAsync(); }

    @Override public Work sendAsync(Tensor t, int peer, int tag) {
      add(g.rank() + ">" + peer, tag);
      return g.sendAsync(t, peer, tag);
    }

    @Override public Work recvAsync(Tensor t, int peer, int tag) {
      add(peer + ">" + g.rank() + " recv", tag);
      return g.recvAsync(t, peer, tag);
    }

    @Override public ProcessGroup subgroup(String label, List<Integer> members) { return new Recording(g.subgroup(label, members), log); }
    @Override public void close() { g.close(); }
  }

  @ParameterizedTest @ValueSource(strings = {"gpipe", "1f1b", "interleaved"})
  void sendsAndReceivesPairUpInOrder(String name) throws Exception {
    Schedule schedule = switch (name) {
      case "gpipe" -> new Schedule.GPipe();
      case "interleaved" -> new Schedule.Interleaved(2);
      default -> new Schedule.OneFOneB();
    };
    Map<String, List<Integer>> log = new ConcurrentHashMap<>();
    List<ProcessGroup> world = CpuDistributed.threads(2);
    ExecutorService pool = Executors.newFixedThreadPool(2);
    try {
      List<Future<?>> runs = new ArrayList<>();
      for (ProcessGroup w : world) runs.add(pool.submit(() -> {
        CpuBackend b = CpuBackend.reference();
        var m = new VisionTransformer(new ModuleContext(b, DType.F32, 5), CFG);
        var plan = HybridPlan.apply(m, Optional.of(DeviceMesh.of(new Recording(w, log), 1, 2)),
            new HybridPlan.Options(schedule, new SplitPolicy.Uniform(), 2048));
        var e = new Engine(plan.local(), new Sgd(ParamGroup.single(plan.local().namedParameters(), 0), 0.9, 0, false),
            (o, y) -> Loss.crossEntropy(o, y), new LrSchedule.Constant(0.01), 4, 0, plan.hooks(), plan.schedule());
        Random r = new Random(1);
        for (int s = 0; s < 1; s++) {
          var batch = new Batch(Tensor.of(r.doubles(8 * 64L, -1, 1).toArray(), Shape.of(8, 1, 8, 8), DType.F32, b),
              Tensor.of(r.longs(8, 0, 5).toArray(), Shape.of(8), DType.I64, b));
          e.trainStep(batch);
          e.evalStep(batch);
        }
        return null;
      }));
      for (Future<?> f : runs) f.get();
    } finally {
      pool.shutdownNow();
      world.forEach(ProcessGroup::close);
    }
    for (String dir : List.of("0>1", "1>0")) {
      List<Integer> sent = log.getOrDefault(dir, List.of()), received = log.getOrDefault(dir + " recv", List.of());
      assertFalse(sent.isEmpty(), dir);
      assertEquals(sent, received, name + ": tags sent " + dir + " vs received, in issue order");
    }
  }
}
