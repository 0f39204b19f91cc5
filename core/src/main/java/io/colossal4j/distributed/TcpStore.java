package io.colossal4j.distributed;

import static io.colossal4j.distributed.StoreProtocol.*;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.ConnectException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.time.Duration;

/**
 * A client of the {@link StoreServer}. Connecting retries until {@code connectTimeout} (rank 0 may start
 * later than the others); requests are one at a time (synchronized). Every failure names the store's
 * address and the key.
 */
public final class TcpStore implements Store {
  /** Slack added to a GET's own timeout before the socket read gives up (the server answers TIMEOUT first). */
  private static final int READ_SLACK_MILLIS = 30_000;

  private final String where;
  private final Socket socket;
  private final DataInputStream in;
  private final DataOutputStream out;

  private TcpStore(String where, Socket socket) throws IOException {
    this.where = where;
    this.socket = socket;
    this.in = new DataInputStream(new BufferedInputStream(socket.getInputStream()));
    this.out = new DataOutputStream(new BufferedOutputStream(socket.getOutputStream()));
  }

  /**
   * Connects to {@code host:port} and presents {@code token}. {@code localAddress} (may be null) binds the
   * client side, which decides the interface this rank is seen from.
   */
  public static TcpStore connect(String host, int port, byte[] token, String localAddress, Duration connectTimeout) {
    if (port < 1 || port > 65535) throw new StoreException("store port " + port + " is out of range; valid: 1..65535");
    String where = host + ":" + port;
    long deadline = System.nanoTime() + connectTimeout.toNanos();
    IOException last = null;
    long backoff = 20;
    while (System.nanoTime() < deadline) {
      Socket s = new Socket();
      try {
        if (localAddress != null) s.bind(new InetSocketAddress(localAddress, 0));
        s.connect(new InetSocketAddress(host, port), (int) Math.max(1, Math.min(10_000, (deadline - System.nanoTime()) / 1_000_000)));
        s.setTcpNoDelay(true);
        s.setSoTimeout(60_000);
        TcpStore store = new TcpStore(where, s);
        store.hello(token);
        return store;
      } catch (ConnectException | SocketTimeoutException e) {
        last = e;
        closeQuietly(s);
        sleep(backoff);
        backoff = Math.min(500, backoff * 2);
      } catch (IOException e) {
        closeQuietly(s);
        throw new StoreException("cannot reach the rendezvous store at " + where + ": " + e.getMessage(), e);
      }
    }
    throw new StoreException("no rendezvous store answered at " + where + " within " + connectTimeout.toSeconds()
        + " s (is rank 0 running, and are MASTER_ADDR/MASTER_PORT right?)" + (last == null ? "" : ": " + last.getMessage()), last);
  }

  /** The address this client connects from: the interface through which the master is reached. */
  public String localAddress() { return socket.getLocalAddress().getHostAddress(); }

  private void hello(byte[] token) throws IOException {
    out.writeInt(MAGIC);
    out.writeShort(VERSION);
    out.writeShort(token.length);
    out.write(token);
    out.flush();
    int status = in.read();
    if (status < 0) throw new StoreException("the server at " + where + " closed the connection during the hello (not a colossal4j store?)");
    short version = in.readShort();
    if (status == OK) return;
    if (status != ERROR) throw new StoreException("the server at " + where + " is not a colossal4j store (answered 0x" + Integer.toHexString(status) + ")");
    closeQuietly(socket);
    throw new StoreException("the rendezvous store at " + where + " (protocol version " + version + ") refused this rank: " + readString(in));
  }

  @Override public synchronized void set(String key, byte[] value) {
    request(key, SET, o -> writeValue(o, value), 0);
  }

  @Override public synchronized byte[] get(String key, Duration timeout) {
    DataInputStream r = request(key, GET, o -> o.writeLong(timeout.toMillis()), timeout.toMillis());
    return readValue(key, r);
  }

  @Override public synchronized long add(String key, long delta) {
    DataInputStream r = request(key, ADD, o -> o.writeLong(delta), 0);
    try {
      return r.readLong();
    } catch (IOException e) {
      throw lost(key, e);
    }
  }

  @Override public synchronized byte[] compareAndSet(String key, byte[] expected, byte[] desired) {
    DataInputStream r = request(key, CAS, o -> {
      o.writeByte(expected == null ? 0 : 1);
      if (expected != null) writeValue(o, expected);
      writeValue(o, desired);
    }, 0);
    return readValue(key, r);
  }

  private byte[] readValue(String key, DataInputStream r) {
    try {
      return StoreProtocol.readValue(r);
    } catch (IOException e) {
      throw lost(key, e);
    }
  }

  private interface Fields { void write(DataOutputStream o) throws IOException; }

  /** Sends one request and returns the stream positioned after an OK status. */
  private DataInputStream request(String key, byte op, Fields fields, long waitMillis) {
    try {
      var frame = new ByteArrayOutputStream();
      var f = new DataOutputStream(frame);
      f.writeByte(op);
      writeString(f, key);
      fields.write(f);
      out.writeInt(frame.size());
      frame.writeTo(out);
      out.flush();
      socket.setSoTimeout((int) Math.min(Integer.MAX_VALUE, waitMillis + READ_SLACK_MILLIS));
      int status = in.read();
      if (status == OK) return in;
      if (status == TIMEOUT) throw new StoreException("timed out after " + waitMillis + " ms waiting for key '" + key + "' in the store at " + where);
      if (status == ERROR) throw new StoreException("the store at " + where + " rejected the request for '" + key + "': " + readString(in));
      throw new StoreException("lost the rendezvous store at " + where + " while asking for '" + key + "' (rank 0 exited?)");
    } catch (IOException e) {
      throw lost(key, e);
    }
  }

  private StoreException lost(String key, IOException e) {
    return new StoreException("lost the rendezvous store at " + where + " while asking for '" + key + "' (rank 0 exited?): " + e.getMessage(), e);
  }

  private static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new StoreException("interrupted while connecting to the store");
    }
  }

  private static void closeQuietly(Socket s) {
    try {
      s.close();
    } catch (IOException ignored) {
      // closing after a failure
    }
  }

  @Override public void close() { closeQuietly(socket); }
}
