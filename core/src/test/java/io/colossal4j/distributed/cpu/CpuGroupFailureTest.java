package io.colossal4j.distributed.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.backend.cpu.CpuBackend;
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
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/** Point-to-point, async handles, subgroups, and every way a group can fail: all bounded, all named. */
class CpuGroupFailureTest {
  static final CpuBackend CPU = CpuBackend.reference();

  @AfterAll static void close() { CPU.close(); }

  static List<ProcessGroup> world(int n, int timeoutMillis) {
    return CpuDistributed.threads(n, new CpuDistributed.ThreadOptions(Duration.ofMillis(timeoutMillis), false));
  }

  static Tensor vec(double... v) { return Tensor.of(v, Shape.of(v.length), DType.F32, CPU); }

  @Test void taggedSendRecvMatchesByTagInOrderPerTag() {
    RankThreads.run(world(2, 30_000), 60, g -> {
      if (g.rank() == 0) {
        g.send(vec(1, 1), 1, 7);
        g.send(vec(2, 2), 1, 9);
        g.send(vec(3, 3), 1, 7);
      } else {
        Tensor a = vec(0, 0), b = vec(0, 0), c = vec(0, 0);
        g.recv(b, 0, 9);           // tag 9 first, although it was sent second
        g.recv(a, 0, 7);
        g.recv(c, 0, 7);
        assertArrayEquals(new double[] {1, 1}, a.toDoubleArray(), 0.0);
        assertArrayEquals(new double[] {2, 2}, b.toDoubleArray(), 0.0);
        assertArrayEquals(new double[] {3, 3}, c.toDoubleArray(), 0.0);
      }
      return null;
    });
  }

  @Test void asyncHandlesOverlapAndCompleteInIssueOrder() {
    RankThreads.run(world(3, 30_000), 60, g -> {
      Tensor a = vec(g.rank(), 1), b = vec(10 * g.rank(), 2);
      Work wa = g.allReduceAsync(a, Reduction.SUM);
      Work wb = g.allReduceAsync(b, Reduction.MAX);
      double local = 0;
      for (int i = 0; i < 1000; i++) local += i;       // computation while the collectives run
      wb.await();
      wa.await();
      assertTrue(wa.isDone() && wb.isDone());
      assertArrayEquals(new double[] {3, 3}, a.toDoubleArray(), 0.0);
      assertArrayEquals(new double[] {20, 2}, b.toDoubleArray(), 0.0);
      return local;
    });
  }

  @Test void subgroupsAreCachedAndIsolated() {
    RankThreads.run(world(4, 30_000), 60, g -> {
      List<Integer> members = g.rank() % 2 == 0 ? List.of(0, 2) : List.of(1, 3);
      ProcessGroup sub = g.subgroup("pair", members);
      assertSame(sub, g.subgroup("pair", members));
      Tensor t = vec(g.rank());
      sub.allReduce(t, Reduction.SUM);
      assertEquals(g.rank() % 2 == 0 ? 2 : 4, t.item(), 0.0);
      assertEquals(members.indexOf(g.rank()), sub.rank());
      return null;
    });
  }

  @Test void mismatchedSizesFailOnEveryRankNamingBothSides() {
    List<String> messages = RankThreads.run(world(2, 30_000), 60, g -> {
      Tensor t = Tensor.zeros(Shape.of(g.rank() == 0 ? 10 : 11), DType.F32, CPU);
      return assertThrows(CollectiveException.class, () -> g.allReduce(t, Reduction.SUM)).getMessage();
    });
    for (String m : messages) {
      assertTrue(m.contains("all_reduce #0") && m.contains("group world"), m);
      assertTrue(m.contains("same collective with the same dtype and number of elements") || m.contains("aborted"), m);
    }
  }

  /**
   * The root of a broadcast only sends, so it cannot see the mismatch itself; the receiver detects it and
   * aborts the job, and the root learns at its next call.
   */
  @Test void mismatchedOperationsAreDetected() {
    List<String> messages = RankThreads.run(world(2, 30_000), 60, g -> {
      Tensor t = vec(1, 2);
      return assertThrows(CollectiveException.class, () -> {
        if (g.rank() == 0) g.allReduce(t, Reduction.SUM);
        else g.broadcast(t, 1);
        g.barrier();
      }).getMessage();
    });
    assertTrue(messages.get(0).contains("sent broadcast of 2 f32"), messages.get(0));
    assertTrue(messages.get(1).contains("aborted") && messages.get(1).contains("sent broadcast"), messages.get(1));
  }

  /** A rank that never joins: the others time out, name the op, group and the silent peer, and refuse later calls. */
  @Test void timeoutFailsTheGroupAndNamesThePeer() {
    List<ProcessGroup> groups = world(3, 1000);
    long start = System.nanoTime();
    List<String> messages = RankThreads.run(groups.subList(0, 2), 30, g -> {
      var e = assertThrows(CollectiveException.class, () -> g.allReduce(vec(1), Reduction.SUM));
      var later = assertThrows(CollectiveException.class, () -> g.barrier());
      assertTrue(later.getMessage().contains("failed earlier"), later.getMessage());
      return e.getMessage();
    });
    assertTrue((System.nanoTime() - start) / 1e9 < 15, "failure took too long");
    for (String m : messages) assertTrue(m.contains("all_reduce #0") && m.contains("group world") && m.contains("timed out"), m);
    assertTrue(String.join("\n", messages).contains("waiting for world rank 2"), messages.toString());
  }

  /** A rank that dies in the middle of a large all-reduce: the others fail at once (not at the timeout). */
  @Test void deadRankFailsTheOthersPromptly() {
    List<ProcessGroup> groups = world(4, 600_000);
    long start = System.nanoTime();
    List<String> messages = RankThreads.run(groups, 60, g -> {
      Tensor t = Tensor.zeros(Shape.of(1 << 20), DType.F32, CPU);
      if (g.rank() == 2) {
        g.allReduceAsync(t, Reduction.SUM);
        ((LocalTransport) ((CpuProcessGroup) g).transport()).crash();
        return "crashed";
      }
      return assertThrows(CollectiveException.class, () -> { for (int i = 0; i < 100; i++) g.allReduce(t, Reduction.SUM); }).getMessage();
    });
    assertTrue((System.nanoTime() - start) / 1e9 < 30, "failure took too long");
    for (int r : new int[] {0, 1, 3}) assertTrue(messages.get(r).contains("world rank 2") && messages.get(r).contains("all_reduce"), messages.get(r));
  }

  @Test void badArgumentsAreRejectedWhereTheyAreMade() {
    ProcessGroup g = world(1, 1000).get(0);
    Tensor ints = Tensor.zeros(Shape.of(4), DType.I32, CPU);
    assertTrue(assertThrows(IllegalArgumentException.class, () -> g.allReduce(ints, Reduction.AVG)).getMessage().contains("AVG needs a floating tensor"));
    assertTrue(assertThrows(IllegalArgumentException.class, () -> g.broadcast(vec(1), 3)).getMessage().contains("root 3 is out of range; valid: 0..0"));
    Tensor m = Tensor.zeros(Shape.of(2, 3), DType.F32, CPU);
    Tensor mt = m.view(Shape.of(3, 2), new long[] {1, 3}, 0);
    assertTrue(assertThrows(IllegalArgumentException.class, () -> g.allReduce(mt, Reduction.SUM)).getMessage().contains("not contiguous"));
    assertTrue(assertThrows(IllegalArgumentException.class, () -> g.allGather(vec(1, 2, 3), vec(1, 2))).getMessage().contains("group size 1"));
    assertTrue(assertThrows(IllegalArgumentException.class, () -> g.subgroup("x", List.of(0, 0))).getMessage().contains("distinct"));
    assertTrue(assertThrows(IllegalArgumentException.class, () -> g.send(vec(1), 0, 0)).getMessage().contains("this rank itself"));
    g.close();
  }
}
