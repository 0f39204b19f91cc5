package io.colossal4j.cli;

import io.colossal4j.step.StepHooks;

import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.distributed.Reduction;
import io.colossal4j.distributed.Work;
import io.colossal4j.distributed.cpu.CpuDistributed;
import io.colossal4j.models.ModelSpec;
import io.colossal4j.models.Zoo;
import io.colossal4j.nn.ModuleContext;
import io.colossal4j.nn.UnitModel;
import io.colossal4j.ops.Loss;
import io.colossal4j.optim.Adam;
import io.colossal4j.optim.LrSchedule;
import io.colossal4j.optim.ParamGroup;
import io.colossal4j.parallel.data.DataParallel;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.step.Batch;
import io.colossal4j.train.Engine;
import io.colossal4j.step.MicroBatchSchedule;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * {@code colossal bench ddp [model] [batch-per-rank] [steps]}: the training-step time of 2 data-parallel ranks (in-JVM,
 * one compute thread each) with gradient synchronisation (bucketed all-reduce launched from the gradient-ready
 * hooks, overlapping backward): over in-JVM messages (the group's shared memory off), and with it on (as between
 * local processes) once with the buckets in ordinary memory (copied through the shared-memory slots) and once in
 * the group's shared buffers (reduced in place); and without it (the same two ranks stepping independently), alternating in one
 * run. The differences are the communication that backward did not hide.
 */
final class DdpBench implements Main.Command {
  @Override public String summary() { return "data-parallel step time with and without gradient sync (2 in-JVM ranks)"; }

  @Override public int run(String[] args) throws Exception {
    String model = args.length > 0 ? args[0] : "vit_tiny_28";
    int batch = args.length > 1 ? Integer.parseInt(args[1]) : 32;
    int steps = args.length > 2 ? Integer.parseInt(args[2]) : 20;
    System.out.printf("bench ddp: %s, %d samples per rank, 2 ranks x 1 thread, %d measured steps after 5 warm-up; load average %.2f%n",
        model, batch, steps, java.lang.management.ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());
    var best = new java.util.EnumMap<Sync, double[]>(Sync.class);
    for (int round = 0; round < 2; round++)             // alternate, so every mode sees the same machine state
      for (Sync mode : Sync.values()) best.put(mode, median(run(model, batch, steps, mode), best.get(mode)));
    double without = best.get(Sync.NONE)[0];
    for (Sync mode : Sync.values()) {
      double ms = best.get(mode)[0];
      System.out.printf("step %-28s %8.1f ms (median)%s%n", mode.label, ms,
          mode == Sync.NONE ? "" : "  exposed sync %+6.1f%% (target: within 10%%)".formatted(100 * (ms - without) / without));
    }
    return 0;
  }

  /** How the ranks synchronise gradients. */
  enum Sync {
    NONE("without sync"), MESSAGES("with sync, no shared memory"), ORDINARY_BUCKETS("with sync, ordinary buckets"),
    SHARED_BUCKETS("with sync, shared buckets");

    final String label;

    Sync(String label) { this.label = label; }
  }

  /** A group that offers no shared buffers (the interface's default allocation), delegating everything else. */
  private record Unshared(ProcessGroup g) implements ProcessGroup {
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
    @Override public Work sendAsync(Tensor t, int peer, int tag) { return g.sendAsync(t, peer, tag); }
    @Override public Work recvAsync(Tensor t, int peer, int tag) { return g.recvAsync(t, peer, tag); }
    @Override public Work barrierAsync() { return g.barrierAsync(); }
    @Override public ProcessGroup subgroup(String label, List<Integer> members) { return new Unshared(g.subgroup(label, members)); }
    @Override public void close() { g.close(); }
  }

  private static double[] median(double[] v, double[] prev) {
    double[] s = v.clone();
    Arrays.sort(s);
    double m = s[s.length / 2];
    return prev == null || m < prev[0] ? new double[] {m} : prev;
  }

  private static double[] run(String model, int batch, int steps, Sync sync) throws Exception {
    List<ProcessGroup> world = CpuDistributed.threads(2, new CpuDistributed.ThreadOptions(java.time.Duration.ofMinutes(10), sync != Sync.MESSAGES));
    ExecutorService pool = Executors.newFixedThreadPool(2);
    try {
      List<Future<double[]>> f = new ArrayList<>();
      for (ProcessGroup g : world) f.add(pool.submit(() -> rank(g, model, batch, steps, sync)));
      double[] t = f.get(0).get();
      f.get(1).get();
      return t;
    } finally {
      pool.shutdownNow();
      world.forEach(ProcessGroup::close);
    }
  }

  private static double[] rank(ProcessGroup g, String model, int batch, int steps, Sync sync) {
    try (CpuBackend cpu = CpuBackend.create(1)) {
      UnitModel m = Zoo.build(ModuleContext.of(cpu, 1), ModelSpec.of(model, 10));
      StepHooks hooks = switch (sync) {
        case NONE -> new StepHooks() {};
        case MESSAGES, ORDINARY_BUCKETS -> new DataParallel(m, new Unshared(g), 25L << 20);
        case SHARED_BUCKETS -> new DataParallel(m, g, 25L << 20);
      };
      Engine e = new Engine(m, Adam.adamW(ParamGroup.single(m.namedParameters(), 0.05)), (o, y) -> Loss.crossEntropy(o, y),
          new LrSchedule.Constant(1e-3), 1, 0, hooks, MicroBatchSchedule.SEQUENTIAL);
      Random r = new Random(g.rank());
      Batch b = new Batch(Tensor.of(r.doubles(batch * 784L, -1, 1).toArray(), Shape.of(batch, 1, 28, 28), DType.F32, cpu),
          Tensor.of(r.longs(batch, 0, 10).toArray(), Shape.of(batch), DType.I64, cpu));
      double[] ms = new double[steps];
      for (int s = -5; s < steps; s++) {
        g.barrier();
        long t0 = System.nanoTime();
        e.trainStep(b);
        if (s >= 0) ms[s] = (System.nanoTime() - t0) / 1e6;
      }
      return ms;
    }
  }
}
