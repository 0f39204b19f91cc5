package io.colossal4j.distributed.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.distributed.RankThreads;
import io.colossal4j.distributed.Reduction;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.time.Duration;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/**
 * Every collective against expectations computed locally from all ranks' inputs (each rank regenerates
 * every rank's random data from its seed). Ranks are threads of this JVM over the same algorithms and
 * messages the processes use.
 *
 * <p>Data: floating tensors hold integers in [-8, 8], so sums over at most 8 ranks (|s| <= 64) are exact
 * in every dtype, bf16 included, and the comparison can be exact whatever order the algorithm combines in;
 * AVG is compared with the expected exact mean rounded to the dtype. A separate test checks f32 Gaussian
 * data with a tolerance. Sizes: 0, 1, primes and sizes that the world size does not divide, on both sides
 * of the 64 KiB switch between the direct and the ring algorithms.
 */
class CpuCollectivesTest {
  static final CpuBackend CPU = CpuBackend.reference();
  static final int[] SIZES = {0, 1, 7, 13, 1009, 20011};
  static final DType[] DTYPES = {DType.F32, DType.F64, DType.BF16, DType.F16, DType.I32, DType.I64};

  @AfterAll static void close() { CPU.close(); }

  static double[] data(int rank, int n, long seed) {
    Random rnd = new Random(seed * 1000 + rank);
    double[] d = new double[n];
    for (int i = 0; i < n; i++) d[i] = rnd.nextInt(17) - 8;
    return d;
  }

  static Tensor tensor(double[] d, DType dt) { return Tensor.of(d, Shape.of(d.length), dt, CPU); }

  static double reduce(Reduction op, double a, double b) {
    return switch (op) {
      case SUM, AVG -> a + b;
      case MAX -> Math.max(a, b);
      case MIN -> Math.min(a, b);
    };
  }

  /** expected[i] = op over ranks of data(rank)[i], then rounded to the dtype (through a tensor). */
  static double[] expected(Reduction op, int world, int n, long seed, DType dt) {
    double[] acc = data(0, n, seed);
    for (int r = 1; r < world; r++) {
      double[] d = data(r, n, seed);
      for (int i = 0; i < n; i++) acc[i] = reduce(op, acc[i], d[i]);
    }
    if (op == Reduction.AVG) for (int i = 0; i < n; i++) acc[i] /= world;
    return tensor(acc, dt).toDoubleArray();
  }

  static List<ProcessGroup> world(int n, boolean shm) {
    return CpuDistributed.threads(n, new CpuDistributed.ThreadOptions(Duration.ofSeconds(60), shm));
  }

  @Test void allReduceEveryOpDtypeAndSize() {
    for (int world : new int[] {2, 3, 8}) {
      List<ProcessGroup> groups = world(world, false);
      RankThreads.run(groups, 120, g -> {
        long seed = 1;
        for (DType dt : DTYPES) for (Reduction op : Reduction.values()) {
          if (op == Reduction.AVG && !dt.isFloating()) continue;
          for (int n : SIZES) {
            Tensor t = tensor(data(g.rank(), n, seed), dt);
            g.allReduce(t, op);
            assertArrayEquals(expected(op, world, n, seed, dt), t.toDoubleArray(), 0.0,
                () -> "all_reduce " + op + " " + dt + " n=" + n + " world=" + world + " rank " + g.rank());
            seed++;
          }
        }
        return null;
      });
      groups.forEach(ProcessGroup::close);
    }
  }

  /** The other collectives for every dtype; n is the per-rank chunk so every algorithm path is taken. */
  @Test void otherCollectivesEveryDtype() {
    for (int world : new int[] {2, 5}) {
      List<ProcessGroup> groups = world(world, false);
      RankThreads.run(groups, 120, g -> {
        long seed = 100;
        for (DType dt : DTYPES) for (int n : SIZES) {
          // the large size (ring algorithms) for f32 only: the ring moves bytes whatever the dtype, and the
          // per-dtype element loops are covered by the small sizes and by the all-reduce test above
          if (n == SIZES[SIZES.length - 1] && dt != DType.F32) continue;
          checkReduceScatter(g, world, n, seed++, dt);
          checkAllGather(g, world, n, seed++, dt);
          checkBroadcast(g, n, seed++, dt);
          checkReduce(g, world, n, seed++, dt);
          checkAllToAll(g, world, n, seed++, dt);
        }
        return null;
      });
      groups.forEach(ProcessGroup::close);
    }
  }

  static void checkReduceScatter(ProcessGroup g, int world, int n, long seed, DType dt) {
    Tensor in = tensor(data(g.rank(), world * n, seed), dt);
    double[] inBefore = in.toDoubleArray();
    Tensor out = Tensor.zeros(Shape.of(n), dt, CPU);
    g.reduceScatter(out, in, Reduction.SUM);
    double[] all = expected(Reduction.SUM, world, world * n, seed, dt);
    double[] mine = java.util.Arrays.copyOfRange(all, g.rank() * n, (g.rank() + 1) * n);
    assertArrayEquals(mine, out.toDoubleArray(), 0.0, "reduce_scatter " + dt + " n=" + n);
    assertArrayEquals(inBefore, in.toDoubleArray(), 0.0, "reduce_scatter must not modify its input");
  }

  static void checkAllGather(ProcessGroup g, int world, int n, long seed, DType dt) {
    Tensor in = tensor(data(g.rank(), n, seed), dt);
    Tensor out = Tensor.zeros(Shape.of(world * n), dt, CPU);
    g.allGather(out, in);
    double[] exp = new double[world * n];
    for (int r = 0; r < world; r++) System.arraycopy(tensor(data(r, n, seed), dt).toDoubleArray(), 0, exp, r * n, n);
    assertArrayEquals(exp, out.toDoubleArray(), 0.0, "all_gather " + dt + " n=" + n);
  }

  static void checkBroadcast(ProcessGroup g, int n, long seed, DType dt) {
    int root = (int) (seed % g.size());
    Tensor t = tensor(data(g.rank(), n, seed), dt);
    g.broadcast(t, root);
    assertArrayEquals(tensor(data(root, n, seed), dt).toDoubleArray(), t.toDoubleArray(), 0.0, "broadcast " + dt + " n=" + n);
  }

  static void checkReduce(ProcessGroup g, int world, int n, long seed, DType dt) {
    int root = (int) (seed % g.size());
    Reduction op = dt.isFloating() ? Reduction.AVG : Reduction.MAX;
    Tensor t = tensor(data(g.rank(), n, seed), dt);
    double[] before = t.toDoubleArray();
    g.reduce(t, root, op);
    double[] exp = g.rank() == root ? expected(op, world, n, seed, dt) : before;
    assertArrayEquals(exp, t.toDoubleArray(), 0.0, "reduce " + op + " " + dt + " n=" + n + " root " + root);
  }

  static void checkAllToAll(ProcessGroup g, int world, int n, long seed, DType dt) {
    Tensor in = tensor(data(g.rank(), world * n, seed), dt);
    Tensor out = Tensor.zeros(Shape.of(world * n), dt, CPU);
    g.allToAll(out, in);
    double[] exp = new double[world * n];
    for (int j = 0; j < world; j++) {
      double[] theirs = tensor(data(j, world * n, seed), dt).toDoubleArray();
      System.arraycopy(theirs, g.rank() * n, exp, j * n, n);
    }
    assertArrayEquals(exp, out.toDoubleArray(), 0.0, "all_to_all " + dt + " n=" + n);
  }

  /** Gaussian f32 data: the ring's order differs from the local sum, so compare within 8 ranks * 2^-23 * sum|x|. */
  @Test void allReduceGaussianIsBitIdenticalAcrossRanksAndCloseToLocalSum() {
    int world = 4, n = 100_003;
    List<ProcessGroup> groups = world(world, false);
    double[][] in = new double[world][n];
    Random rnd = new Random(7);
    for (double[] row : in) for (int i = 0; i < n; i++) row[i] = (float) rnd.nextGaussian();
    List<float[]> results = RankThreads.run(groups, 60, g -> {
      Tensor t = tensor(in[g.rank()], DType.F32);
      g.allReduce(t, Reduction.SUM);
      return t.toFloatArray();
    });
    for (int i = 0; i < n; i++) {
      double sum = 0, abs = 0;
      for (double[] row : in) { sum += row[i]; abs += Math.abs(row[i]); }
      assertEquals(sum, results.get(0)[i], world * 0x1p-23 * abs + 1e-30, "element " + i);
    }
    for (int r = 1; r < world; r++) assertArrayEquals(results.get(0), results.get(r), 0f, "rank " + r + " differs from rank 0");
    groups.forEach(ProcessGroup::close);
  }

  /** The segmented shared-memory path (large all-reduces of 3 or more members on one host) in several segments. */
  @Test void sharedMemoryAllReduceSpansSegments() {
    int world = 3;
    long slot = 256 << 10;
    int n = (int) (2 * slot / 4) + 12_347;   // three segments, the last not divisible by 3
    List<ProcessGroup> groups = CpuDistributed.threads(world, new CpuDistributed.ThreadOptions(Duration.ofSeconds(60), true), 4096, slot);
    RankThreads.run(groups, 120, g -> {
      for (Reduction op : new Reduction[] {Reduction.SUM, Reduction.MAX}) {
        Tensor t = tensor(data(g.rank(), n, 5), DType.F32);
        g.allReduce(t, op);
        assertArrayEquals(expected(op, world, n, 5, DType.F32), t.toDoubleArray(), 0.0, "shm all_reduce " + op);
      }
      return null;
    });
    groups.forEach(ProcessGroup::close);
  }
}
