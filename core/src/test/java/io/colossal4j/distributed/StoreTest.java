package io.colossal4j.distributed;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.PrintStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The rendezvous store over real sockets on loopback: operations, waits, and every kind of bad client. */
class StoreTest {
  static final byte[] TOKEN = "s3cret".getBytes(StandardCharsets.UTF_8);
  final ByteArrayOutputStream logBytes = new ByteArrayOutputStream();
  StoreServer server;

  @BeforeEach void start() { server = StoreServer.start("127.0.0.1", 0, TOKEN, new PrintStream(logBytes, true)); }

  @AfterEach void stop() { server.close(); }

  TcpStore client() { return TcpStore.connect("127.0.0.1", server.port(), TOKEN, null, Duration.ofSeconds(10)); }

  @Test void setGetAddCompareAndSet() {
    try (TcpStore a = client(); TcpStore b = client()) {
      a.set("k", new byte[] {1, 2, 3});
      assertArrayEquals(new byte[] {1, 2, 3}, b.get("k", Duration.ofSeconds(1)));
      assertEquals(5, a.add("n", 5));
      assertEquals(3, b.add("n", -2));
      assertArrayEquals(new byte[] {7}, a.compareAndSet("c", null, new byte[] {7}));       // absent -> set
      assertArrayEquals(new byte[] {7}, b.compareAndSet("c", null, new byte[] {8}));       // lost: sees 7
      assertArrayEquals(new byte[] {9}, b.compareAndSet("c", new byte[] {7}, new byte[] {9}));
    }
  }

  @Test void getWaitsForALaterSetAndTimesOutNamingTheKey() throws Exception {
    try (TcpStore a = client(); TcpStore b = client()) {
      var later = CompletableFuture.supplyAsync(() -> a.get("late", Duration.ofSeconds(20)), java.util.concurrent.Executors.newSingleThreadExecutor());
      Thread.sleep(100);
      b.set("late", new byte[] {42});
      assertArrayEquals(new byte[] {42}, later.get());
      var e = assertThrows(StoreException.class, () -> a.get("never", Duration.ofMillis(200)));
      assertTrue(e.getMessage().contains("timed out after 200 ms waiting for key 'never'"), e.getMessage());
    }
  }

  @Test void barrierReleasesAllPartiesTogether() {
    List<TcpStore> clients = IntStream.range(0, 4).mapToObj(i -> client()).toList();
    var pool = java.util.concurrent.Executors.newFixedThreadPool(4);   // one thread per party: they block
    var all = clients.stream().map(c -> CompletableFuture.runAsync(() -> c.barrier("b", 4, Duration.ofSeconds(20)), pool)).toList();
    all.forEach(CompletableFuture::join);
    pool.shutdown();
    clients.forEach(TcpStore::close);
  }

  @Test void wrongTokenIsRefusedAndLogged() throws InterruptedException {
    var e = assertThrows(StoreException.class,
        () -> TcpStore.connect("127.0.0.1", server.port(), "other".getBytes(StandardCharsets.UTF_8), null, Duration.ofSeconds(5)));
    assertTrue(e.getMessage().contains("wrong job token"), e.getMessage());
    assertLogged("wrong job token");
  }

  /** The server's connection thread may write its log line just after the client has read the answer. */
  private void assertLogged(String text) throws InterruptedException {
    long deadline = System.nanoTime() + 5_000_000_000L;
    while (!logBytes.toString().contains(text) && System.nanoTime() < deadline) Thread.sleep(10);
    assertTrue(logBytes.toString().contains(text), logBytes.toString());
  }

  /** A client of another protocol version is refused with both versions named; the store keeps serving. */
  @Test void otherProtocolVersionIsRefused() throws Exception {
    try (Socket s = new Socket("127.0.0.1", server.port())) {
      var out = new DataOutputStream(s.getOutputStream());
      out.writeInt(StoreProtocol.MAGIC);
      out.writeShort(2);
      out.writeShort(TOKEN.length);
      out.write(TOKEN);
      out.flush();
      var in = new DataInputStream(s.getInputStream());
      assertEquals(StoreProtocol.ERROR, in.readByte());
      assertEquals(StoreProtocol.VERSION, in.readShort());
      String why = StoreProtocol.readString(in);
      assertTrue(why.contains("version 2") && why.contains("speaks 1"), why);
    }
    try (TcpStore ok = client()) {
      assertEquals(1, ok.add("still-up", 1));
    }
  }

  /** Garbage after a valid hello, and a client that is not ours at all: each dropped, the store stays up. */
  @Test void malformedMessagesNeverTakeTheStoreDown() throws Exception {
    try (TcpStore keeper = client()) {
      keeper.set("x", new byte[] {1});
      try (Socket s = new Socket("127.0.0.1", server.port())) {
        var out = new DataOutputStream(s.getOutputStream());
        out.writeInt(StoreProtocol.MAGIC);
        out.writeShort(StoreProtocol.VERSION);
        out.writeShort(TOKEN.length);
        out.write(TOKEN);
        out.writeInt(Integer.MAX_VALUE);        // frame length far beyond the limit
        out.flush();
        var in = new DataInputStream(s.getInputStream());
        assertEquals(StoreProtocol.OK, in.readByte());
        in.readShort();
        assertEquals(StoreProtocol.ERROR, in.readByte());
        assertTrue(StoreProtocol.readString(in).contains("malformed"));
      }
      try (Socket s = new Socket("127.0.0.1", server.port())) {
        s.getOutputStream().write("GET / HTTP/1.1\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
        s.getOutputStream().flush();
        assertEquals(StoreProtocol.ERROR, s.getInputStream().read());
      }
      try (Socket s = new Socket("127.0.0.1", server.port())) {
        var out = new DataOutputStream(s.getOutputStream());
        out.writeInt(StoreProtocol.MAGIC);
        out.writeShort(StoreProtocol.VERSION);
        out.writeShort(TOKEN.length);
        out.write(TOKEN);
        out.writeInt(3);
        out.write(new byte[] {99, 0, 0});     // unknown operation 99
        out.flush();
        var in = new DataInputStream(s.getInputStream());
        in.readByte();
        in.readShort();
        assertEquals(StoreProtocol.ERROR, in.readByte());
      }
      assertArrayEquals(new byte[] {1}, keeper.get("x", Duration.ofSeconds(1)));
      assertLogged("malformed");
    }
  }

  @Test void portInUseAndOutOfRangeAreReportedAsSuch() {
    var e = assertThrows(StoreException.class, () -> StoreServer.start("127.0.0.1", server.port(), TOKEN, System.err));
    assertTrue(e.getMessage().contains("already in use"), e.getMessage());
    assertTrue(assertThrows(StoreException.class, () -> StoreServer.start("127.0.0.1", 70000, TOKEN, System.err)).getMessage().contains("valid: 0..65535"));
    assertTrue(assertThrows(StoreException.class, () -> TcpStore.connect("127.0.0.1", 0, TOKEN, null, Duration.ofSeconds(1))).getMessage().contains("valid: 1..65535"));
  }

  @Test void noStoreListeningIsReportedAfterTheConnectTimeout() throws Exception {
    int port;
    try (var s = new java.net.ServerSocket(0)) { port = s.getLocalPort(); }
    var e = assertThrows(StoreException.class, () -> TcpStore.connect("127.0.0.1", port, TOKEN, null, Duration.ofMillis(500)));
    assertTrue(e.getMessage().contains("no rendezvous store answered"), e.getMessage());
  }
}
