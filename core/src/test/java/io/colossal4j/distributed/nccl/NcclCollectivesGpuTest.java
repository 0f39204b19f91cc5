package io.colossal4j.distributed.nccl;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.distributed.CollectiveException;
import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.distributed.RankThreads;
import io.colossal4j.distributed.Reduction;
import io.colossal4j.distributed.Work;
import io.colossal4j.ops.Arith;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.time.Duration;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/**
 * Every collective of the NCCL group on two GPUs (one rank per thread, cuda:0 and cuda:1) against expectations
 * computed here from both ranks' inputs (each rank regenerates the other's data from its seed).
 *
 * <p>Data: floating tensors hold integers in [-8, 8], so sums over 2 ranks are exact in f32 and bf16 and the
 * comparison is exact whatever order NCCL reduces in; AVG is compared with the exact mean rounded to the dtype
 * (a half-integer, exact in bf16 for |x| <= 8). Sizes: 0, 1, primes, sizes 2 does not divide, and one above
 * 1 Mi elements (NCCL switches protocol and splits over channels there).
 */
class NcclCollectivesGpuTest {
  static final CpuBackend CPU = CpuBackend.reference();
  static final int[] SIZES = {0, 1, 7, 13, 1009, 20011, (1 << 20) + 7};
  static final DType[] DTYPES = {DType.F32, DType.BF16};
  private static List<ProcessGroup> world;

  /** The shared two-rank job, created by the first test that runs (each test is skipped, saying why, without two GPUs). */
  static synchronized List<ProcessGroup> world() {
    TwoGpus.gpus();
    if (world == null) world = TwoGpus.worlds(Duration.ofSeconds(60));
    return world;
  }

  @AfterAll static void close() {
    if (world != null) world.reversed().forEach(ProcessGroup::close);
  }

  static double[] data(int rank, int n, long seed) {
    Random rnd = new Random(seed * 1000 + rank);
    double[] d = new double[n];
    for (int i = 0; i < n; i++) d[i] = rnd.nextInt(17) - 8;
    return d;
  }

  /** The values as {@code dt} would hold them (rounded through a CPU tensor). */
  static double[] rounded(double[] v, DType dt) { return Tensor.of(v, Shape.of(v.length), dt, CPU).toDoubleArray(); }

  static Tensor onGpu(ProcessGroup g, double[] v, DType dt) {
    return Tensor.of(v, Shape.of(v.length), dt, ((NcclProcessGroup) g).backend());
  }

  static double[] reduced(Reduction op, int n, long seed) {
    double[] a = data(0, n, seed), b = data(1, n, seed), out = new double[n];
    for (int i = 0; i < n; i++)
      out[i] = switch (op) {
        case SUM -> a[i] + b[i];
        case AVG -> (a[i] + b[i]) / 2;
        case MAX -> Math.max(a[i], b[i]);
        case MIN -> Math.min(a[i], b[i]);
      };
    return out;
  }

  @Test void allReduceEveryOpDtypeAndSize() {
    RankThreads.run(world(), 300, g -> {
      for (DType dt : DTYPES) for (Reduction op : Reduction.values()) for (int n : SIZES) {
        Tensor t = onGpu(g, data(g.rank(), n, 1), dt);
        g.allReduce(t, op);
        assertArrayEquals(rounded(reduced(op, n, 1), dt), t.toDoubleArray(), 0.0, () -> "all_reduce " + op + " " + dt + " n=" + n + " rank " + g.rank());
      }
      for (DType dt : new DType[] {DType.I32, DType.I64, DType.F64, DType.F16}) {
        Tensor t = onGpu(g, data(g.rank(), 1009, 2), dt);
        g.allReduce(t, Reduction.SUM);
        assertArrayEquals(reduced(Reduction.SUM, 1009, 2), t.toDoubleArray(), 0.0, () -> "all_reduce SUM " + dt);
      }
      return null;
    });
  }

  @Test void reduceScatterAndAllGather() {
    RankThreads.run(world(), 300, g -> {
      for (DType dt : DTYPES) for (int n : SIZES) {
        Tensor in = onGpu(g, data(g.rank(), 2 * n, 3), dt), out = Tensor.empty(Shape.of(n), dt, ((NcclProcessGroup) g).backend());
        g.reduceScatter(out, in, Reduction.SUM);
        double[] sum = reduced(Reduction.SUM, 2 * n, 3);
        double[] mine = java.util.Arrays.copyOfRange(sum, g.rank() * n, (g.rank() + 1) * n);
        assertArrayEquals(rounded(mine, dt), out.toDoubleArray(), 0.0, () -> "reduce_scatter " + dt + " n=" + n);

        Tensor part = onGpu(g, data(g.rank(), n, 4), dt), all = Tensor.empty(Shape.of(2 * n), dt, ((NcclProcessGroup) g).backend());
        g.allGather(all, part);
        double[] expect = new double[2 * n];
        System.arraycopy(data(0, n, 4), 0, expect, 0, n);
        System.arraycopy(data(1, n, 4), 0, expect, n, n);
        assertArrayEquals(rounded(expect, dt), all.toDoubleArray(), 0.0, () -> "all_gather " + dt + " n=" + n);
      }
      return null;
    });
  }

  @Test void broadcastReduceAndAllToAll() {
    RankThreads.run(world(), 300, g -> {
      for (DType dt : DTYPES) for (int n : SIZES) for (int root = 0; root < 2; root++) {
        int r = root;
        Tensor b = onGpu(g, data(g.rank(), n, 5), dt);
        g.broadcast(b, root);
        assertArrayEquals(rounded(data(root, n, 5), dt), b.toDoubleArray(), 0.0, () -> "broadcast from " + r + " " + dt + " n=" + n);

        Tensor red = onGpu(g, data(g.rank(), n, 6), dt);
        g.reduce(red, root, Reduction.MAX);
        double[] expect = g.rank() == root ? reduced(Reduction.MAX, n, 6) : data(g.rank(), n, 6);
        assertArrayEquals(rounded(expect, dt), red.toDoubleArray(), 0.0, () -> "reduce to " + r + " " + dt + " n=" + n);
      }
      for (int n : SIZES) {
        Tensor in = onGpu(g, data(g.rank(), 2 * n, 7), DType.F32), out = Tensor.empty(Shape.of(2 * n), DType.F32, ((NcclProcessGroup) g).backend());
        g.allToAll(out, in);
        double[] expect = new double[2 * n];
        for (int j = 0; j < 2; j++) System.arraycopy(data(j, 2 * n, 7), g.rank() * n, expect, j * n, n);
        assertArrayEquals(expect, out.toDoubleArray(), 0.0, "all_to_all n=" + n);
      }
      return null;
    });
  }

  /** Both ranks send and receive at once, in both directions and several messages deep: no deadlock, order kept. */
  @Test void sendRecvBothDirections() {
    RankThreads.run(world(), 120, g -> {
      int peer = 1 - g.rank();
      for (int n : SIZES) {
        Work[] sent = new Work[3];
        for (int k = 0; k < 3; k++) sent[k] = g.sendAsync(onGpu(g, data(g.rank(), n, 10 + k), DType.BF16), peer, k);
        for (int k = 0; k < 3; k++) {
          Tensor t = Tensor.empty(Shape.of(n), DType.BF16, ((NcclProcessGroup) g).backend());
          g.recv(t, peer, k);
          int kk = k;
          assertArrayEquals(rounded(data(peer, n, 10 + k), DType.BF16), t.toDoubleArray(), 0.0, () -> "recv #" + kk + " n=" + n);
        }
        for (Work w : sent) w.await();
      }
      g.barrier();
      return null;
    });
  }

  /**
   * Stream ordering: the input is produced by a kernel still queued on the compute stream when the all-reduce
   * is issued, and a kernel queued after {@code await} reads the result. Large enough that a missing event would
   * read stale or partial data.
   */
  @Test void orderedAgainstTheComputeStream() {
    RankThreads.run(world(), 120, g -> {
      int n = 8 << 20;
      for (int round = 0; round < 3; round++) {
        Tensor x = onGpu(g, data(g.rank(), n, 20 + round), DType.F32);
        Tensor y = Arith.mulScalar(x, 2);            // queued on the compute stream
        Work w = g.allReduceAsync(y, Reduction.SUM);
        w.await();
        Tensor z = Arith.addScalar(y, 1);            // queued after the wait
        double[] expect = reduced(Reduction.SUM, n, 20 + round);
        for (int i = 0; i < n; i++) expect[i] = 2 * expect[i] + 1;
        assertArrayEquals(expect, z.toDoubleArray(), 0.0, "round " + round);
        assertTrue(w.isDone());
      }
      return null;
    });
  }

  @Test void badArgumentsFailOnTheCallersThread() {
    ProcessGroup g = world().getFirst();
    Tensor cpu = Tensor.of(new double[] {1}, Shape.of(1), DType.F32, CPU);
    var e = assertThrows(IllegalArgumentException.class, () -> g.allReduce(cpu, Reduction.SUM));
    assertTrue(e.getMessage().contains("all_reduce on group world") && e.getMessage().contains("cuda:0"), e.getMessage());
    Tensor ints = onGpu(g, new double[] {1, 2}, DType.I32);
    e = assertThrows(IllegalArgumentException.class, () -> g.allReduce(ints, Reduction.AVG));
    assertTrue(e.getMessage().contains("AVG needs a floating tensor"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> g.send(ints, 0, 0));
    assertTrue(e.getMessage().contains("is this rank itself"), e.getMessage());
    assertEquals(2, g.size());
  }
}
