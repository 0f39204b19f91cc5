package io.colossal4j.distributed.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.distributed.Reduction;
import io.colossal4j.distributed.RendezvousSpec;
import io.colossal4j.distributed.StoreException;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.io.PrintStream;
import java.io.OutputStream;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The TCP rendezvous and transport with ranks as threads of this JVM (the same code the rank processes run,
 * without JVM start-up): the store on a free port, pairwise connections, all three all-reduce algorithms,
 * and the start-up checks that catch misconfigured jobs.
 */
class TcpBootstrapTest {
  static final PrintStream QUIET = new PrintStream(OutputStream.nullOutputStream());
  final ExecutorService pool = Executors.newCachedThreadPool();

  @AfterEach void stop() { pool.shutdownNow(); }

  static int freePort() throws Exception {
    try (ServerSocket s = new ServerSocket(0)) { return s.getLocalPort(); }
  }

  static RendezvousSpec spec(int rank, int world, int port, String token, int connectSeconds) {
    return spec(rank, world, port, token, connectSeconds, null);
  }

  static RendezvousSpec spec(int rank, int world, int port, String token, int connectSeconds, String nodeAddr) {
    return new RendezvousSpec(rank, world, rank, world, "127.0.0.1", port, nodeAddr, token.getBytes(StandardCharsets.UTF_8),
        "t" + port, Duration.ofSeconds(60), Duration.ofSeconds(connectSeconds));
  }

  CompletableFuture<ProcessGroup> join(RendezvousSpec s) {
    return CompletableFuture.supplyAsync(() -> CpuDistributed.connect(s, QUIET), pool);
  }

  /**
   * Direct (16 elements) and ring (1M elements) all-reduce over TCP, then a subgroup. Each rank listens on
   * its own loopback address (127.0.0.1..3), so they count as three hosts and the ring is used rather
   * than shared memory.
   */
  @Test void threeRanksConnectAndReduceOverTcp() throws Exception {
    int port = freePort();
    List<CompletableFuture<ProcessGroup>> joins = new ArrayList<>();
    for (int r = 0; r < 3; r++) joins.add(join(spec(r, 3, port, "tok", 60, "127.0.0." + (r + 1))));
    List<CompletableFuture<Void>> runs = new ArrayList<>();
    try (CpuBackend cpu = CpuBackend.reference()) {
      for (var j : joins) {
        ProcessGroup g = j.get(60, TimeUnit.SECONDS);
        runs.add(CompletableFuture.runAsync(() -> {
          for (int n : new int[] {16, 1 << 20}) {
            Tensor t = Tensor.full(Shape.of(n), DType.F32, cpu, g.rank() + 1);
            g.allReduce(t, Reduction.SUM);
            double[] v = t.toDoubleArray();
            assertTrue(v[0] == 6 && v[n - 1] == 6, "all_reduce over TCP, n=" + n);
          }
          if (g.rank() != 1) {
            ProcessGroup pair = g.subgroup("pair", List.of(0, 2));
            Tensor t = Tensor.full(Shape.of(3), DType.I64, cpu, g.rank());
            pair.allReduce(t, Reduction.MAX);
            assertArrayEquals(new double[] {2, 2, 2}, t.toDoubleArray(), 0.0);
          }
          g.barrier();
          g.close();
        }, pool));
      }
      for (var r : runs) r.get(120, TimeUnit.SECONDS);
    }
  }

  /**
   * Closing a job's groups releases every socket it opened: the file descriptors of this JVM return to
   * their count before the job. One job first loads the classes (opening jar files counts as descriptors);
   * then three jobs of three ranks, each of which would leave its 6 connection ends open if the transport
   * leaked them. Slack of 2 for descriptors the JVM opens on its own meanwhile (18 would leak).
   */
  @Test void closingReleasesEverySocket() throws Exception {
    java.nio.file.Path fds = java.nio.file.Path.of("/proc/self/fd");
    org.junit.jupiter.api.Assumptions.assumeTrue(java.nio.file.Files.isDirectory(fds), "needs /proc/self/fd (Linux)");
    runSmallJob();
    long before = openDescriptors(fds);
    for (int job = 0; job < 3; job++) runSmallJob();
    long after = openDescriptors(fds);
    for (int i = 0; i < 50 && after > before + 2; i++) {   // closing is bounded but not instantaneous
      Thread.sleep(100);
      after = openDescriptors(fds);
    }
    assertTrue(after <= before + 2, "open file descriptors: " + before + " before three jobs, " + after + " after they closed");
  }

  private void runSmallJob() throws Exception {
    int port = freePort();
    List<CompletableFuture<ProcessGroup>> joins = new ArrayList<>();
    for (int r = 0; r < 3; r++) joins.add(join(spec(r, 3, port, "tok", 60)));
    List<CompletableFuture<Void>> runs = new ArrayList<>();
    try (CpuBackend cpu = CpuBackend.reference()) {
      for (var j : joins) {
        ProcessGroup g = j.get(60, TimeUnit.SECONDS);
        runs.add(CompletableFuture.runAsync(() -> {
          Tensor t = Tensor.full(Shape.of(8), DType.F32, cpu, 1);
          g.allReduce(t, Reduction.SUM);
          assertTrue(t.toDoubleArray()[7] == 3, "all_reduce before closing");
          g.close();
        }, pool));
      }
      for (var r : runs) r.get(60, TimeUnit.SECONDS);
    }
  }

  private static long openDescriptors(java.nio.file.Path fds) throws java.io.IOException {
    try (var s = java.nio.file.Files.list(fds)) {
      return s.count();
    }
  }

  /** Waits until rank 0 has recorded its world size in the store it serves on {@code port}. */
  private static void awaitWorldSizeAgreed(int port) throws InterruptedException {
    for (int i = 0; i < 300; i++) {
      try (var store = io.colossal4j.distributed.TcpStore.connect("127.0.0.1", port, "tok".getBytes(StandardCharsets.UTF_8), null, Duration.ofSeconds(10))) {
        store.get("world_size", Duration.ofSeconds(10));
        return;
      } catch (StoreException notServingYet) {
        Thread.sleep(50);
      }
    }
  }

  @Test void ranksThatDisagreeOnTheWorldSizeAreStopped() throws Exception {
    int port = freePort();
    var r0 = join(spec(0, 2, port, "tok", 3));
    awaitWorldSizeAgreed(port);   // rank 0 registers first, however loaded the machine
    var e = assertThrows(StoreException.class, () -> CpuDistributed.connect(spec(1, 3, port, "tok", 3), QUIET));
    assertTrue(e.getMessage().contains("started with world size 3 but another rank with 2"), e.getMessage());
    var e0 = assertThrows(Exception.class, () -> r0.get(60, TimeUnit.SECONDS));
    assertTrue(e0.getCause() instanceof StoreException, e0.toString());
  }

  @Test void aRankClaimedTwiceIsStopped() throws Exception {
    int port = freePort();
    var r0 = join(spec(0, 3, port, "tok", 3));
    var first = join(spec(1, 3, port, "tok", 3));
    Thread.sleep(300);
    var e = assertThrows(Exception.class, () -> join(spec(1, 3, port, "tok", 3)).get(60, TimeUnit.SECONDS));
    String all = e.getCause().getMessage();
    try {
      first.get(60, TimeUnit.SECONDS);
    } catch (Exception other) {
      all += " | " + other.getCause().getMessage();
    }
    assertTrue(all.contains("two processes claim rank 1"), all);
    assertThrows(Exception.class, () -> r0.get(60, TimeUnit.SECONDS));
  }

  @Test void aRankWithAnotherTokenIsRefusedByTheStore() throws Exception {
    int port = freePort();
    var r0 = join(spec(0, 2, port, "right", 3));
    Thread.sleep(200);
    var e = assertThrows(StoreException.class, () -> CpuDistributed.connect(spec(1, 2, port, "wrong", 3), QUIET));
    assertTrue(e.getMessage().contains("refused this rank") && e.getMessage().contains("wrong job token"), e.getMessage());
    assertThrows(Exception.class, () -> r0.get(60, TimeUnit.SECONDS));
  }

  /** A peer whose data-plane hello carries another protocol version is answered with a refusal, not accepted. */
  @Test void aPeerOfAnotherProtocolVersionIsRefused() throws Exception {
    int port = freePort();
    var r0 = join(spec(0, 2, port, "tok", 4));
    try (var store = io.colossal4j.distributed.TcpStore.connect("127.0.0.1", port, "tok".getBytes(StandardCharsets.UTF_8), null, Duration.ofSeconds(10))) {
      store.set("addr/1", "127.0.0.1\n1\nfake-host\n0".getBytes(StandardCharsets.UTF_8));   // pose as rank 1
      String[] addr = new String(store.get("addr/0", Duration.ofSeconds(10)), StandardCharsets.UTF_8).split("\n");
      try (var c = java.nio.channels.SocketChannel.open(new java.net.InetSocketAddress(addr[0], Integer.parseInt(addr[1])))) {
        byte[] t = "tok".getBytes(StandardCharsets.UTF_8);
        c.write(java.nio.ByteBuffer.allocate(12 + t.length).putInt(TcpBootstrap.MAGIC).putShort((short) (TcpBootstrap.VERSION + 1))
            .putShort((short) t.length).put(t).putInt(1).flip());
        var ack = java.nio.ByteBuffer.allocate(4);
        while (ack.hasRemaining()) if (c.read(ack) < 0) break;
        org.junit.jupiter.api.Assertions.assertEquals(-2, ack.flip().getInt(), "refusal code for another version");
      }
    }
    var e = assertThrows(Exception.class, () -> r0.get(60, TimeUnit.SECONDS));
    assertTrue(e.getCause().getMessage().contains("timed out waiting for 1 higher ranks"), e.getCause().getMessage());
  }
}
