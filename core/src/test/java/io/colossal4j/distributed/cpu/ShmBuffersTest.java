package io.colossal4j.distributed.cpu;

import static io.colossal4j.distributed.cpu.CpuCollectivesTest.CPU;
import static io.colossal4j.distributed.cpu.CpuCollectivesTest.DTYPES;
import static io.colossal4j.distributed.cpu.CpuCollectivesTest.data;
import static io.colossal4j.distributed.cpu.CpuCollectivesTest.expected;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.distributed.CollectiveException;
import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.distributed.RankThreads;
import io.colossal4j.distributed.Reduction;
import io.colossal4j.distributed.Work;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.MemoryCategory;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;
import java.time.Duration;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * All-reduce in place on shared buffers ({@link ProcessGroup#allocateShared}), ranks as threads of this JVM
 * mapping the same files as processes do, with pieces of 4 KiB (the slice size) so that the larger sizes are
 * cut into many pieces handed out to whichever rank asks. Expectations are computed locally from every
 * rank's data ({@link CpuCollectivesTest}: integer-valued data, exact in every dtype, so comparisons are
 * exact), and Gaussian data must give the member-order sum bit for bit, equal to the copying path's result.
 */
class ShmBuffersTest {
  static final int[] SIZES = {0, 1, 7, 13, 1009, 20011};

  static List<ProcessGroup> world(int n, long timeoutMillis) { return ShmAllReduceTest.world(n, timeoutMillis); }

  static Tensor shared(ProcessGroup g, int n, DType dt) { return g.allocateShared(Shape.of(n), dt, CPU, MemoryCategory.GRADIENT); }

  /** Writes d (converted to dst's dtype) into dst, a contiguous view. */
  static void fill(Tensor dst, double[] d) {
    CPU.copyFromHost(CpuBackend.segment(Tensor.of(d, Shape.of(d.length), dst.dtype(), CPU)), dst);
  }

  /** Every dtype, reduction and size, on 2 and 3 ranks, on views at element 0 and at an odd offset of one buffer per dtype. */
  @Test void everyDtypeReductionAndSizeInPlace() {
    for (int world : new int[] {2, 3}) {
      List<ProcessGroup> groups = world(world, 60_000);
      RankThreads.run(groups, 120, g -> {
        long seed = 1;
        for (DType dt : DTYPES) {
          Tensor buf = shared(g, 20011 + 5, dt);
          assertTrue(g.isShared(buf));
          assertArrayEquals(new double[20016], buf.toDoubleArray(), 0.0, "zero-filled");
          for (Reduction op : Reduction.values()) {
            if (op == Reduction.AVG && !dt.isFloating()) continue;
            for (int n : SIZES) for (int offset : new int[] {0, 5}) {
              Tensor t = buf.view(Shape.of(n), new long[] {1}, offset);
              fill(t, data(g.rank(), n, seed));
              g.allReduce(t, op);
              assertArrayEquals(expected(op, world, n, seed, dt), t.toDoubleArray(), 0.0,
                  "in-place all_reduce " + op + " " + dt + " n=" + n + " offset " + offset + " world=" + world + " rank " + g.rank());
              seed++;
            }
          }
        }
        return null;
      });
      groups.forEach(ProcessGroup::close);
    }
  }

  /**
   * Gaussian data, f32, bf16 and f64, on 2 and 3 ranks: every rank holds exactly the member-order sum rounded
   * to the dtype after each addition (no tolerance); on 2 ranks the same bits as the copying path gives.
   */
  @Test void gaussianInPlaceEqualsTheCopyingPathBitForBit() {
    for (int world : new int[] {2, 3}) {
      List<ProcessGroup> groups = world(world, 60_000);
      for (DType dt : new DType[] {DType.F32, DType.BF16, DType.F64}) {
        int n = 100_003;
        double[][] in = new double[world][n];
        Random rnd = new Random(31 + world);
        for (double[] row : in) for (int i = 0; i < n; i++) row[i] = (float) rnd.nextGaussian();
        List<double[][]> results = RankThreads.run(groups, 60, g -> {
          Tensor s = shared(g, n, dt), plain = Tensor.of(in[g.rank()], Shape.of(n), dt, CPU);
          fill(s, in[g.rank()]);
          g.allReduce(s, Reduction.SUM);
          g.allReduce(plain, Reduction.SUM);
          return new double[][] {s.toDoubleArray(), plain.toDoubleArray()};
        });
        double[] acc = Tensor.of(in[0], Shape.of(n), dt, CPU).toDoubleArray();
        for (int r = 1; r < world; r++) {
          double[] b = Tensor.of(in[r], Shape.of(n), dt, CPU).toDoubleArray();
          for (int i = 0; i < n; i++) acc[i] = dt == DType.F32 ? (double) ((float) acc[i] + (float) b[i]) : acc[i] + b[i];
          acc = Tensor.of(acc, Shape.of(n), dt, CPU).toDoubleArray();   // rounds to the dtype after each addition
        }
        for (int r = 0; r < world; r++) {
          assertArrayEquals(acc, results.get(r)[0], 0.0, "in place " + dt + " world " + world + " rank " + r);
          if (world == 2)   // 3 ranks copy this size through the segmented path, which starts each chunk from its owner's data
            assertArrayEquals(results.get(r)[1], results.get(r)[0], 0.0, "in place vs copying " + dt + " world " + world + " rank " + r);
        }
      }
      groups.forEach(ProcessGroup::close);
    }
  }

  /**
   * Many in-place all-reduces on two buffers of several pieces, interleaved with copying all-reduces, message
   * collectives and async handles, on 4 ranks: the piece counters and slot ring stay in step, results in order.
   */
  @Test void interleavesWithOtherCollectivesAndAsyncHandles() {
    List<ProcessGroup> groups = world(4, 60_000);
    RankThreads.run(groups, 60, g -> {
      Tensor a = shared(g, 3001, DType.F32), b = shared(g, 5, DType.I64);
      for (int round = 0; round < 30; round++) {
        CPU.kernels().fill(a, g.rank() + round);
        fill(b, new double[] {g.rank(), 1, 2, 3, round});
        Tensor c = Tensor.full(Shape.of(2000), DType.F64, CPU, 1);
        Work wa = g.allReduceAsync(a, Reduction.MAX);
        Work wc = g.allReduceAsync(c, Reduction.SUM);
        g.broadcast(Tensor.full(Shape.of(3), DType.F32, CPU, g.rank()), round % 4);
        g.allReduce(b, Reduction.SUM);
        wa.await();
        wc.await();
        assertEquals(3 + round, a.toDoubleArray()[3000], 0.0);
        assertArrayEquals(new double[] {6, 4, 8, 12, 4 * round}, b.toDoubleArray(), 0.0);
        assertEquals(4, c.toDoubleArray()[1999], 0.0);
      }
      return null;
    });
    groups.forEach(ProcessGroup::close);
  }

  /** Whichever rank compares first names the other's call; the job is aborted, so every rank fails. */
  private static void assertNamedOnEveryRank(List<String> messages, String... anyOf) {
    for (String m : messages) assertTrue(m.contains("same dtype and number of elements"), m);
    String all = String.join("\n", messages);
    boolean found = false;
    for (String s : anyOf) found |= all.contains(s);
    assertTrue(found, all);
  }

  /** (Each allocation is two operations: the allocation and the all-reduce of its outcome.) */
  @Test void mismatchesAreNamedOnEveryRank() throws Exception {
    // different buffers
    List<ProcessGroup> groups = world(2, 30_000);
    List<String> messages = RankThreads.run(groups, 60, g -> {
      Tensor b0 = shared(g, 100, DType.F32), b1 = shared(g, 100, DType.F32);
      Tensor t = g.rank() == 0 ? b0 : b1;
      return assertThrows(CollectiveException.class, () -> g.allReduce(t, Reduction.SUM)).getMessage();
    });
    groups.forEach(ProcessGroup::close);
    assertNamedOnEveryRank(messages, "(world rank 1) sent all_reduce #4 (SUM) of 100 f32 in shared buffer 1 at element 0",
        "(world rank 0) sent all_reduce #4 (SUM) of 100 f32 in shared buffer 0 at element 0");

    // a shared buffer against an ordinary tensor
    groups = world(2, 30_000);
    messages = RankThreads.run(groups, 60, g -> {
      Tensor t = g.rank() == 0 ? shared(g, 100, DType.F32) : Tensor.zeros(Shape.of(100), DType.F32, CPU);
      if (g.rank() == 1) g.allocateShared(Shape.of(100), DType.F32, CPU, MemoryCategory.GRADIENT);
      return assertThrows(CollectiveException.class, () -> g.allReduce(t, Reduction.SUM)).getMessage();
    });
    groups.forEach(ProcessGroup::close);
    assertNamedOnEveryRank(messages, "sent all_reduce #2 (SUM) of 100 f32 of an ordinary tensor (this rank's is in shared buffer 0)",
        "(world rank 0) sent all_reduce #2 (SUM) of 100 f32 in shared buffer 0 at element 0");

    // allocations of different sizes
    groups = world(2, 30_000);
    messages = RankThreads.run(groups, 60, g ->
        assertThrows(CollectiveException.class, () -> shared(g, g.rank() == 0 ? 10 : 11, DType.F32)).getMessage());
    assertNamedOnEveryRank(messages, "sent allocate_shared of 11 f32", "sent allocate_shared of 10 f32");
    assertEquals(List.of(), ShmAllReduceTest.leftoverFiles(groups));
    groups.forEach(ProcessGroup::close);
  }

  /**
   * A rank that dies between in-place all-reduces: the others fail promptly (not at the 10-minute timeout),
   * naming it, in the operation after its last (#5: the allocation is #0 and #1).
   */
  @Test void aDeadRankFailsTheOthersPromptly() {
    for (int world : new int[] {2, 3}) {
      List<ProcessGroup> groups = world(world, 600_000);
      long start = System.nanoTime();
      List<String> messages = RankThreads.run(groups, 60, g -> {
        Tensor t = shared(g, 1 << 16, DType.F32);
        if (g.rank() == 1) {
          for (int i = 0; i < 3; i++) g.allReduce(t, Reduction.SUM);
          ((LocalTransport) ((CpuProcessGroup) g).transport()).crash();
          return "crashed";
        }
        return assertThrows(CollectiveException.class, () -> { for (int i = 0; i < 1000; i++) g.allReduce(t, Reduction.SUM); }).getMessage();
      });
      assertTrue((System.nanoTime() - start) / 1e9 < 30, "failure took too long");
      for (int r = 0; r < world; r++)
        if (r != 1) assertTrue(messages.get(r).contains("world rank 1") && messages.get(r).contains("all_reduce #5"), messages.get(r));
      groups.forEach(ProcessGroup::close);
    }
  }

  /**
   * The files' names go once every member has mapped them; closing the group releases the buffers (a tensor
   * used afterwards fails, naming the released storage); a member that cannot reserve its part makes every
   * member fall back to ordinary memory; without shared memory the allocation is ordinary.
   */
  @Test void lifetimeAndFallback() throws Exception {
    List<ProcessGroup> groups = world(2, 30_000);
    List<Tensor> tensors = RankThreads.run(groups, 60, g -> shared(g, 1000, DType.F32));
    assertEquals(List.of(), ShmAllReduceTest.leftoverFiles(groups));
    groups.forEach(ProcessGroup::close);
    for (Tensor t : tensors) assertThrows(TensorException.class, t::toDoubleArray);

    // a member whose file system is full: every member falls back to ordinary memory, and later buffers are shared again
    groups = world(3, 30_000);
    RankThreads.run(groups, 60, g -> {
      ShmBuffers buffers = ((CpuProcessGroup) g).sharedBuffers();
      if (g.rank() == 2) buffers.limitReservations(8192);
      Tensor big = shared(g, 4096, DType.F32), small = shared(g, 100, DType.F32);
      assertFalse(g.isShared(big), "rank " + g.rank());
      assertTrue(g.isShared(small), "rank " + g.rank());
      for (Tensor t : List.of(big, small)) {
        CPU.kernels().fill(t, g.rank() + 1);
        g.allReduce(t, Reduction.SUM);
        assertEquals(6, t.toDoubleArray()[(int) t.numel() - 1], 0.0);
      }
      return null;
    });
    groups.forEach(ProcessGroup::close);

    List<ProcessGroup> plain = CpuDistributed.threads(2, new CpuDistributed.ThreadOptions(Duration.ofSeconds(30), false));
    RankThreads.run(plain, 60, g -> {
      Tensor t = shared(g, 1000, DType.F32);
      assertFalse(g.isShared(t));
      assertArrayEquals(new double[1000], t.toDoubleArray(), 0.0);
      CPU.kernels().fill(t, g.rank() + 1);
      g.allReduce(t, Reduction.SUM);
      assertEquals(3, t.toDoubleArray()[999], 0.0);
      return null;
    });
    plain.forEach(ProcessGroup::close);
  }
}
