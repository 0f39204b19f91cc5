package io.colossal4j.distributed.cpu;

import static io.colossal4j.distributed.cpu.CpuCollectivesTest.DTYPES;
import static io.colossal4j.distributed.cpu.CpuCollectivesTest.data;
import static io.colossal4j.distributed.cpu.CpuCollectivesTest.expected;
import static io.colossal4j.distributed.cpu.CpuCollectivesTest.tensor;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.distributed.CollectiveException;
import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.distributed.RankThreads;
import io.colossal4j.distributed.Reduction;
import io.colossal4j.distributed.Work;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.time.Duration;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The shared-memory all-reduces (members on one host), with ranks as threads of this JVM mapping the same
 * files as processes do: the pipelined one with slices of 4 KiB, so that the larger sizes cross many slice
 * boundaries and wrap the ring of slots (20011 f32 = 20 slices, 2.5 laps of 8 slots; tensors of more than
 * one slice take the split slices, one slice is combined whole); for 4 ranks, sizes
 * above 64 KiB take the segmented one, here with 16 KiB slots (several segments). Expectations are computed
 * locally from every rank's data, as in {@link CpuCollectivesTest} (integer-valued data: exact in every
 * dtype, so comparisons are exact).
 */
class ShmAllReduceTest {
  static final long SLICE = 4096, SEGMENT_SLOT = 16 << 10;
  static final int[] SIZES = {0, 1, 7, 13, 1009, 1024, 20011};

  static List<ProcessGroup> world(int n, long timeoutMillis) {
    return CpuDistributed.threads(n, new CpuDistributed.ThreadOptions(Duration.ofMillis(timeoutMillis), true), SLICE, SEGMENT_SLOT);
  }

  @Test void everyDtypeReductionAndSizeOnTwoAndFourRanks() {
    for (int world : new int[] {2, 4}) {
      List<ProcessGroup> groups = world(world, 60_000);
      RankThreads.run(groups, 120, g -> {
        long seed = 1;
        for (DType dt : DTYPES) for (Reduction op : Reduction.values()) {
          if (op == Reduction.AVG && !dt.isFloating()) continue;
          for (int n : SIZES) {
            Tensor t = tensor(data(g.rank(), n, seed), dt);
            g.allReduce(t, op);
            assertArrayEquals(expected(op, world, n, seed, dt), t.toDoubleArray(), 0.0,
                "shm all_reduce " + op + " " + dt + " n=" + n + " world=" + world + " rank " + g.rank());
            seed++;
          }
        }
        return null;
      });
      groups.forEach(ProcessGroup::close);
    }
  }

  /**
   * Gaussian data through the pipelined path, f32, bf16 and f64, 2 ranks (sizes up to 100003 elements) and
   * 3 ranks (under the 64 KiB switch): tensors of one slice are combined whole, larger ones split into
   * per-member chunks (reduce-scatter, all-gather); sizes leave a short last slice (1025 f32 is one slice
   * and one element, so chunks of 1 and 0 elements) and chunks not divisible by the vector width. Members
   * combine in member order, so every rank must hold exactly the sum ((x0 + x1) + x2) rounded to the dtype
   * after each addition, computed here, bit for bit (no tolerance).
   */
  @Test void gaussianResultIsTheMemberOrderSumOnEveryRank() {
    for (int world : new int[] {2, 3}) {
      List<ProcessGroup> groups = world(world, 60_000);
      for (DType dt : new DType[] {DType.F32, DType.BF16, DType.F64})
        for (int n : world == 2 ? new int[] {1000, 1025, 2065, 100_003} : new int[] {1000, 1025, 2065, 16_001 * 4 / dt.byteSize()})
          assertMemberOrderSum(groups, dt, n, 11 + n);
      groups.forEach(ProcessGroup::close);
    }
  }

  /** Production slices (256 KiB, 8 slots): 1000003 f32 (16 slices, the ring of 8 wrapped twice), two operations in a row. */
  @Test void productionSlicesOnALargeOddSize() {
    List<ProcessGroup> groups = CpuDistributed.threads(2, new CpuDistributed.ThreadOptions(Duration.ofSeconds(60), true));
    assertMemberOrderSum(groups, DType.F32, 1_000_003, 5);
    assertMemberOrderSum(groups, DType.F32, 1_000_003, 6);
    groups.forEach(ProcessGroup::close);
  }

  /** Every rank's all-reduce SUM of Gaussian data equals the member-order sum computed here, bit for bit. */
  private static void assertMemberOrderSum(List<ProcessGroup> groups, DType dt, int n, long seed) {
    int world = groups.size();
    double[][] in = new double[world][n];
    Random rnd = new Random(seed);
    for (double[] row : in) for (int i = 0; i < n; i++) row[i] = (float) rnd.nextGaussian();
    List<double[]> results = RankThreads.run(groups, 60, g -> {
      Tensor t = Tensor.of(in[g.rank()], Shape.of(n), dt, CpuCollectivesTest.CPU);
      g.allReduce(t, Reduction.SUM);
      return t.toDoubleArray();
    });
    double[] acc = Tensor.of(in[0], Shape.of(n), dt, CpuCollectivesTest.CPU).toDoubleArray();
    for (int r = 1; r < world; r++) {
      double[] b = Tensor.of(in[r], Shape.of(n), dt, CpuCollectivesTest.CPU).toDoubleArray();
      for (int i = 0; i < n; i++) acc[i] = dt == DType.F32 ? (double) ((float) acc[i] + (float) b[i]) : acc[i] + b[i];
      acc = Tensor.of(acc, Shape.of(n), dt, CpuCollectivesTest.CPU).toDoubleArray();   // rounds to the dtype after each addition
    }
    for (int r = 0; r < world; r++) assertArrayEquals(acc, results.get(r), 0.0, dt + " n=" + n + " world " + world + " rank " + r);
  }

  /** Shared-memory all-reduces interleaved with message collectives and async handles keep their order. */
  @Test void interleavesWithOtherCollectivesAndAsyncHandles() {
    List<ProcessGroup> groups = world(4, 60_000);
    RankThreads.run(groups, 60, g -> {
      for (int round = 0; round < 20; round++) {
        Tensor a = Tensor.full(Shape.of(3000), DType.F32, CpuCollectivesTest.CPU, g.rank() + round);
        Tensor b = Tensor.full(Shape.of(5), DType.I64, CpuCollectivesTest.CPU, g.rank());
        Work wa = g.allReduceAsync(a, Reduction.MAX);
        g.broadcast(b, round % 4);
        Tensor c = Tensor.full(Shape.of(1), DType.F64, CpuCollectivesTest.CPU, 1);
        g.allReduce(c, Reduction.SUM);
        wa.await();
        assertEquals(3 + round, a.toDoubleArray()[2999], 0.0);
        assertEquals(round % 4, b.toDoubleArray()[4], 0.0);
        assertEquals(4, c.item(), 0.0);
      }
      return null;
    });
    groups.forEach(ProcessGroup::close);
  }

  /** Different sizes, dtypes or reductions are caught by the slot headers and named on every rank. */
  @Test void mismatchesAreNamedOnEveryRank() {
    record Case(DType dt0, DType dt1, int n0, int n1, Reduction op1, String theirs) {}
    for (Case c : List.of(new Case(DType.F32, DType.F32, 10, 11000, Reduction.SUM, "(SUM) of 11000 f32"),
        new Case(DType.F32, DType.F64, 10, 10, Reduction.SUM, "(SUM) of 10 f64"),
        new Case(DType.F32, DType.F32, 0, 0, Reduction.MAX, "(MAX) of 0 f32"))) {
      List<ProcessGroup> groups = world(2, 30_000);
      List<String> messages = RankThreads.run(groups, 60, g -> {
        Tensor t = Tensor.zeros(Shape.of(g.rank() == 0 ? c.n0 : c.n1), g.rank() == 0 ? c.dt0 : c.dt1, CpuCollectivesTest.CPU);
        Reduction op = g.rank() == 0 ? Reduction.SUM : c.op1;
        return assertThrows(CollectiveException.class, () -> g.allReduce(t, op)).getMessage();
      });
      groups.forEach(ProcessGroup::close);
      assertTrue(messages.get(0).contains("all_reduce #0") && messages.get(0).contains("group world"), messages.get(0));
      for (String m : messages) assertTrue(m.contains("same dtype and number of elements"), m);
      // whichever rank compares first names the other's call; the other rank then fails with that report (the
      // job is aborted), so the pair of messages names one side's call or the other's, never neither
      String all = String.join("\n", messages);
      String ours = "(world rank 0) sent all_reduce #0 (SUM) of " + c.n0 + " " + c.dt0.name().toLowerCase(java.util.Locale.ROOT);
      assertTrue(all.contains("world rank 1) sent all_reduce #0 " + c.theirs) || all.contains(ours), all);
    }
  }

  /** Names of this job's shared-memory files still in /dev/shm (failing jobs must not leave any behind). */
  static List<String> leftoverFiles(List<ProcessGroup> groups) throws java.io.IOException {
    String prefix = "c4j-" + ((CpuProcessGroup) groups.get(0)).transport().jobId();
    java.nio.file.Path dir = java.nio.file.Path.of("/dev/shm");
    if (!java.nio.file.Files.isDirectory(dir)) return List.of();
    try (var files = java.nio.file.Files.list(dir)) {
      return files.map(f -> f.getFileName().toString()).filter(f -> f.startsWith(prefix)).toList();
    }
  }

  /** A rank that never arrives: the others time out naming it, refuse later calls, and leave no file behind. */
  @Test void aSilentRankTimesOutNamingIt() throws Exception {
    List<ProcessGroup> groups = world(3, 1000);
    long start = System.nanoTime();
    List<String> messages = RankThreads.run(groups.subList(0, 2), 30, g -> {
      var e = assertThrows(CollectiveException.class, () -> g.allReduce(Tensor.zeros(Shape.of(16), DType.F32, CpuCollectivesTest.CPU), Reduction.SUM));
      assertTrue(assertThrows(CollectiveException.class, g::barrier).getMessage().contains("failed earlier"));
      return e.getMessage();
    });
    assertTrue((System.nanoTime() - start) / 1e9 < 15, "failure took too long");
    for (String m : messages) assertTrue(m.contains("all_reduce #0 (16 f32)") && m.contains("timed out after 1000 ms"), m);
    assertTrue(String.join("\n", messages).contains("waiting for world rank 2"), messages.toString());
    assertEquals(List.of(), leftoverFiles(groups));
    groups.forEach(ProcessGroup::close);
  }

  /** A rank that dies between large all-reduces: the others fail promptly (not at the 10-minute timeout), on both paths. */
  @Test void aDeadRankFailsTheOthersPromptly() {
    for (int world : new int[] {2, 4}) {
      List<ProcessGroup> groups = world(world, 600_000);
      long start = System.nanoTime();
      List<String> messages = RankThreads.run(groups, 60, g -> {
        Tensor t = Tensor.zeros(Shape.of(1 << 16), DType.F32, CpuCollectivesTest.CPU);
        if (g.rank() == 1) {
          for (int i = 0; i < 3; i++) g.allReduce(t, Reduction.SUM);
          ((LocalTransport) ((CpuProcessGroup) g).transport()).crash();
          return "crashed";
        }
        return assertThrows(CollectiveException.class, () -> { for (int i = 0; i < 1000; i++) g.allReduce(t, Reduction.SUM); }).getMessage();
      });
      assertTrue((System.nanoTime() - start) / 1e9 < 30, "failure took too long");
      // Rank 1 may return from all_reduce #2 while a slower peer is still inside it (in the segmented path a
      // rank leaves once its own share is out); that peer then truthfully reports losing rank 1 in #2.
      for (int r = 0; r < world; r++)
        if (r != 1) assertTrue(messages.get(r).contains("world rank 1")
            && (messages.get(r).contains("all_reduce #3") || messages.get(r).contains("all_reduce #2")), messages.get(r));
      groups.forEach(ProcessGroup::close);
    }
  }
}
