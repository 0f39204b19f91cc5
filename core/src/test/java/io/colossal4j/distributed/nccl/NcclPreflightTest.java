package io.colossal4j.distributed.nccl;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.backend.cuda.ffi.Nccl;
import io.colossal4j.distributed.StoreException;
import io.colossal4j.distributed.StoreServer;
import io.colossal4j.distributed.TcpStore;
import io.colossal4j.distributed.nccl.NcclPreflight.RankInfo;
import java.io.OutputStream;
import java.io.PrintStream;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** What the NCCL group checks before its first NCCL call, without a GPU: device choice, versions, id exchange. */
class NcclPreflightTest {
  StoreServer server;

  @BeforeEach void start() { server = StoreServer.start("127.0.0.1", 0, TwoGpus.TOKEN, new PrintStream(OutputStream.nullOutputStream())); }

  @AfterEach void stop() { server.close(); }

  TcpStore client() { return TcpStore.connect("127.0.0.1", server.port(), TwoGpus.TOKEN, null, Duration.ofSeconds(10)); }

  @Test void deviceIsTheLocalRankAndMustExist() {
    assertEquals(1, NcclPreflight.device(3, 1, 2, 2));
    var e = assertThrows(IllegalArgumentException.class, () -> NcclPreflight.device(2, 2, 3, 2));
    assertEquals("rank 2 is local rank 2 of 3 ranks on this host, but the host has 2 GPU(s) (cuda:0..cuda:1); NCCL needs one GPU per rank: "
        + "start at most 2 ranks per node (--nproc-per-node 2) or check CUDA_VISIBLE_DEVICES", e.getMessage());
    // too many ranks on the host is refused on every rank, also on those whose GPU exists
    assertThrows(IllegalArgumentException.class, () -> NcclPreflight.device(0, 0, 3, 2));
    e = assertThrows(IllegalArgumentException.class, () -> NcclPreflight.device(0, 0, 1, 0));
    assertTrue(e.getMessage().contains("sees none"), e.getMessage());
  }

  @Test void versionsMustAgree() {
    NcclPreflight.check(List.of(new RankInfo(0, "h", 0, 22809), new RankInfo(1, "h", 1, 22809)));
    var e = assertThrows(IllegalStateException.class, () -> NcclPreflight.check(List.of(
        new RankInfo(0, "a", 0, 22809), new RankInfo(1, "a", 1, 22809), new RankInfo(2, "b", 0, 22703))));
    assertEquals("the ranks load different NCCL versions: 2.27.3 on rank [2]; 2.28.9 on ranks [0, 1]; every rank must load the same libnccl "
        + "(set C4J_LIBNCCL or LD_LIBRARY_PATH alike on every node)", e.getMessage());
    assertEquals("2.8.4", Nccl.versionText(2804));
  }

  @Test void aGpuBelongsToOneRankPerHost() {
    NcclPreflight.check(List.of(new RankInfo(0, "a", 0, 1), new RankInfo(1, "b", 0, 1)));
    var e = assertThrows(IllegalStateException.class, () -> NcclPreflight.check(List.of(new RankInfo(0, "a", 1, 1), new RankInfo(1, "a", 1, 1))));
    assertTrue(e.getMessage().startsWith("ranks 0 and 1 both use cuda:1 on host a"), e.getMessage());
  }

  /** Two ranks announce through a real store; a version mismatch fails on both with the same sentence. */
  @Test void exchangeThroughTheStore() {
    try (TcpStore a = client(); TcpStore b = client(); var threads = Executors.newFixedThreadPool(2)) {
      var fa = CompletableFuture.supplyAsync(() -> NcclPreflight.exchange(a, 2, new RankInfo(0, "h", 0, 22809), Duration.ofSeconds(10)), threads);
      var fb = CompletableFuture.supplyAsync(() -> NcclPreflight.exchange(b, 2, new RankInfo(1, "h", 1, 22809), Duration.ofSeconds(10)), threads);
      assertEquals(fa.join(), fb.join());
      assertEquals(new RankInfo(1, "h", 1, 22809), fa.join().get(1));
    }
  }

  @Test void versionMismatchThroughTheStoreFailsEveryRank() {
    try (TcpStore a = client(); TcpStore b = client()) {
      a.set("nccl/preflight/1", "h\n1\n22703".getBytes());
      var e = assertThrows(IllegalStateException.class, () -> NcclPreflight.exchange(a, 2, new RankInfo(0, "h", 0, 22809), Duration.ofSeconds(5)));
      assertTrue(e.getMessage().contains("2.27.3 on rank [1]; 2.28.9 on rank [0]"), e.getMessage());
      var missing = assertThrows(StoreException.class, () -> NcclPreflight.exchange(b, 3, new RankInfo(1, "h", 1, 22703), Duration.ofMillis(300)));
      assertTrue(missing.getMessage().contains("nccl/preflight/2"), missing.getMessage());
    }
  }

  /** Member 0 makes the id once; the others read the same 128 bytes; a wrong-sized id is refused. */
  @Test void uniqueIdExchange() {
    AtomicInteger made = new AtomicInteger();
    byte[] id = new byte[Nccl.UNIQUE_ID_BYTES];
    for (int i = 0; i < id.length; i++) id[i] = (byte) (i * 7);
    try (TcpStore a = client(); TcpStore b = client(); var threads = Executors.newSingleThreadExecutor()) {
      var reader = CompletableFuture.supplyAsync(() -> NcclPreflight.uniqueId(b, "nccl/id/0,1", false, () -> { made.incrementAndGet(); return null; }, Duration.ofSeconds(10)), threads);
      byte[] mine = NcclPreflight.uniqueId(a, "nccl/id/0,1", true, () -> { made.incrementAndGet(); return id.clone(); }, Duration.ofSeconds(10));
      assertArrayEquals(id, mine);
      assertArrayEquals(id, reader.join());
      assertEquals(1, made.get());
      assertThrows(IllegalStateException.class, () -> NcclPreflight.uniqueId(a, "nccl/id/x", true, () -> new byte[5], Duration.ofSeconds(1)));
      a.set("nccl/id/y", new byte[3]);
      var e = assertThrows(StoreException.class, () -> NcclPreflight.uniqueId(b, "nccl/id/y", false, () -> null, Duration.ofSeconds(1)));
      assertTrue(e.getMessage().contains("has 3 bytes, expected 128"), e.getMessage());
    }
  }
}
