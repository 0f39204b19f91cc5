package io.colossal4j.distributed.cpu;

import io.colossal4j.distributed.RendezvousSpec;
import io.colossal4j.distributed.StoreException;
import io.colossal4j.distributed.StoreServer;
import io.colossal4j.distributed.TcpStore;
import java.io.IOException;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.stream.IntStream;

/**
 * Joins a job of separate processes: rank 0 serves the store on the master address; every rank checks
 * that all agree on the world size and that no rank is claimed twice, listens on its node address,
 * publishes it, connects to every lower rank and accepts every higher one (each connection opened with a
 * hello carrying magic, protocol version, token and rank), then waits for all at a store barrier.
 */
final class TcpBootstrap {
  private TcpBootstrap() {}

  static final int MAGIC = 0x43344A44; // "C4JD"
  static final short VERSION = 1;
  /** Acknowledgement sent instead of the rank when the peer's hello carries another protocol version. */
  private static final int REFUSED_VERSION = -2;

  static CpuWorld join(RendezvousSpec spec, PrintStream log) {
    int r = spec.rank(), n = spec.worldSize();
    StoreServer server = r == 0 ? StoreServer.start(spec.masterAddr(), spec.masterPort(), spec.token(), log) : null;
    TcpStore store = null;
    ServerSocketChannel listener = null;
    SocketChannel[] channels = null;
    try {
      store = TcpStore.connect(spec.masterAddr(), spec.masterPort(), spec.token(), spec.nodeAddr(), spec.connectTimeout());
      agree(store, spec);
      String advertise = spec.nodeAddr() != null ? spec.nodeAddr() : store.localAddress();
      listener = ServerSocketChannel.open().bind(new InetSocketAddress(advertise, 0), n);
      String host = InetAddress.getLocalHost().getHostName();
      long pid = ProcessHandle.current().pid();
      store.set("addr/" + r, (advertise + "\n" + listener.socket().getLocalPort() + "\n" + host + "\n" + pid).getBytes(StandardCharsets.UTF_8));
      String[][] peers = new String[n][];
      for (int j = 0; j < n; j++) peers[j] = new String(store.get("addr/" + j, spec.connectTimeout()), StandardCharsets.UTF_8).split("\n");
      channels = new SocketChannel[n];
      connectAll(spec, listener, peers, channels);
      store.barrier("connected", n, spec.connectTimeout());
      String[] hostKeys = IntStream.range(0, n).mapToObj(j -> peers[j][0] + "@" + peers[j][2]).toArray(String[]::new);
      String[] names = IntStream.range(0, n).mapToObj(j -> "(pid " + peers[j][3] + " on " + peers[j][2] + ")").toArray(String[]::new);
      var transport = new TcpTransport(r, channels, hostKeys, names, spec.jobId());
      TcpStore s = store;
      ServerSocketChannel l = listener;
      return new CpuWorld(transport, spec.timeout(), true, () -> leave(spec, s, server, l));
    } catch (IOException e) {
      closeAll(store, server, listener, channels);
      throw new StoreException("rank " + r + " could not connect to its peers: " + e.getMessage(), e);
    } catch (RuntimeException e) {
      closeAll(store, server, listener, channels);
      throw e;
    }
  }

  /** Every rank must agree on the world size, and each rank number is claimed once. */
  private static void agree(TcpStore store, RendezvousSpec spec) {
    byte[] mine = Integer.toString(spec.worldSize()).getBytes(StandardCharsets.UTF_8);
    byte[] agreed = store.compareAndSet("world_size", null, mine);
    if (!MessageDigest.isEqual(agreed, mine))
      throw new StoreException("rank " + spec.rank() + " was started with world size " + spec.worldSize() + " but another rank with "
          + new String(agreed, StandardCharsets.UTF_8) + "; every rank must get the same WORLD_SIZE");
    long claims = store.add("claims/rank" + spec.rank(), 1);
    if (claims > 1) throw new StoreException("two processes claim rank " + spec.rank() + "; check RANK / --node-rank of every process");
  }

  /** Fills ch[j] for every peer j; on failure the connections made so far stay in ch for the caller to close. */
  private static void connectAll(RendezvousSpec spec, ServerSocketChannel listener, String[][] peers, SocketChannel[] ch) throws IOException {
    int r = spec.rank(), n = spec.worldSize();
    for (int j = 0; j < r; j++) {
      SocketChannel c = SocketChannel.open();
      ch[j] = c;
      c.socket().connect(new InetSocketAddress(peers[j][0], Integer.parseInt(peers[j][1])), 30_000);
      tune(c);
      writeHello(c, spec);
      int ack = readInt(c);
      if (ack == REFUSED_VERSION) throw new IOException("rank " + j + " refused the connection: it speaks another data protocol version (this rank: " + VERSION + ")");
      if (ack != r) throw new IOException("rank " + j + " refused the connection (wrong job token?)");
    }
    long deadline = System.nanoTime() + spec.connectTimeout().toNanos();
    listener.socket().setSoTimeout((int) Math.max(1, spec.connectTimeout().toMillis()));
    int expected = n - 1 - r;
    while (expected > 0) {
      if (System.nanoTime() > deadline) throw new IOException("timed out waiting for " + expected + " higher ranks to connect");
      Socket s;
      try {
        s = listener.socket().accept();
      } catch (SocketTimeoutException e) {
        throw new IOException("timed out waiting for " + expected + " higher ranks to connect");
      }
      SocketChannel c = s.getChannel();
      int from;
      try {
        tune(c);
        from = readHello(c, spec);
      } catch (IOException e) {
        c.close();
        throw e;
      }
      if (from == REFUSED_VERSION || from <= r || from >= n || ch[from] != null) {
        writeInt(c, from == REFUSED_VERSION ? REFUSED_VERSION : -1);
        c.close();
        continue;
      }
      writeInt(c, from);
      ch[from] = c;
      expected--;
    }
  }

  private static void tune(SocketChannel c) throws IOException {
    c.socket().setTcpNoDelay(true);
    c.socket().setSendBufferSize(4 << 20);
    c.socket().setReceiveBufferSize(4 << 20);
  }

  private static void writeHello(SocketChannel c, RendezvousSpec spec) throws IOException {
    byte[] t = spec.token();
    ByteBuffer b = ByteBuffer.allocate(4 + 2 + 2 + t.length + 4).putInt(MAGIC).putShort(VERSION).putShort((short) t.length).put(t).putInt(spec.rank());
    c.write(b.flip());
  }

  /** The connecting rank; -1 when the hello is not from a rank of this job, REFUSED_VERSION for another protocol version. */
  private static int readHello(SocketChannel c, RendezvousSpec spec) throws IOException {
    ByteBuffer head = read(c, 8);
    if (head.getInt() != MAGIC) return -1;
    short version = head.getShort();
    int len = head.getShort() & 0xffff;
    if (len > 256) return -1;
    byte[] t = new byte[len];
    read(c, len).get(t);
    int from = read(c, 4).getInt();
    if (version != VERSION) return REFUSED_VERSION;
    return MessageDigest.isEqual(t, spec.token()) ? from : -1;
  }

  private static ByteBuffer read(SocketChannel c, int n) throws IOException {
    ByteBuffer b = ByteBuffer.allocate(n);
    while (b.hasRemaining()) if (c.read(b) < 0) throw new IOException("peer closed during the hello");
    return b.flip();
  }

  private static int readInt(SocketChannel c) throws IOException { return read(c, 4).getInt(); }

  private static void writeInt(SocketChannel c, int v) throws IOException { c.write(ByteBuffer.allocate(4).putInt(v).flip()); }

  /**
   * Leaving: ranks other than 0 say goodbye through the store; rank 0 waits (bounded) for them before it
   * stops serving the store, so no rank loses the store while still finishing its start-up barrier.
   */
  private static void leave(RendezvousSpec spec, TcpStore store, StoreServer server, ServerSocketChannel listener) {
    try {
      if (spec.rank() != 0) store.set("bye/" + spec.rank(), new byte[] {1});
      else for (int j = 1; j < spec.worldSize(); j++) store.get("bye/" + j, Duration.ofSeconds(10));
    } catch (RuntimeException ignored) {
      // a peer died or the store is gone: leaving anyway
    }
    closeAll(store, server, listener, null);
  }

  private static void closeAll(TcpStore store, StoreServer server, ServerSocketChannel listener, SocketChannel[] channels) {
    if (store != null) store.close();
    if (server != null) server.close();
    try {
      if (listener != null) listener.close();
    } catch (IOException ignored) {
      // nothing to do at shutdown
    }
    if (channels == null) return;
    for (SocketChannel c : channels) {
      try {
        if (c != null) c.close();
      } catch (IOException ignored) {
        // failing already; the first error is what matters
      }
    }
  }
}
