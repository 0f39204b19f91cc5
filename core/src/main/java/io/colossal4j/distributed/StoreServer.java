package io.colossal4j.distributed;

import static io.colossal4j.distributed.StoreProtocol.*;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.ByteArrayInputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.PrintStream;
import java.net.BindException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The rendezvous store's server (rank 0 runs it). One virtual thread per connection; a connection that
 * fails the hello (wrong token, another protocol version, not our protocol) or sends a malformed frame is
 * answered with an error and closed, and the server carries on. Rejections are reported on {@code log}.
 */
public final class StoreServer implements AutoCloseable {
  private final ServerSocket socket;
  private final byte[] token;
  private final PrintStream log;
  private final ReentrantLock lock = new ReentrantLock();
  private final Condition changed = lock.newCondition();
  private final Map<String, byte[]> values = new HashMap<>();
  private final Thread acceptor;
  private final java.util.Set<Socket> connections = java.util.concurrent.ConcurrentHashMap.newKeySet();
  private volatile boolean closed;

  private StoreServer(ServerSocket socket, byte[] token, PrintStream log) {
    this.socket = socket;
    this.token = token.clone();
    this.log = log;
    this.acceptor = Thread.ofPlatform().daemon().name("c4j-store-accept").start(this::acceptLoop);
  }

  /** Binds {@code host:port} (port 0 picks a free one; see {@link #port()}); a port in use is reported as such. */
  public static StoreServer start(String host, int port, byte[] token, PrintStream log) {
    if (port < 0 || port > 65535) throw new StoreException("store port " + port + " is out of range; valid: 0..65535");
    if (token.length == 0 || token.length > MAX_TOKEN) throw new StoreException("store token must have 1.." + MAX_TOKEN + " bytes, got " + token.length);
    ServerSocket s = null;
    try {
      s = new ServerSocket();
      s.setReuseAddress(false);
      s.bind(new InetSocketAddress(host, port), 128);
      return new StoreServer(s, token, log);
    } catch (BindException e) {
      closeQuietly(s);
      throw new StoreException("cannot serve the rendezvous store on " + host + ":" + port + ": the port is already in use"
          + " (another job?) or the address is not on this host (" + e.getMessage() + "); choose another --master-port", e);
    } catch (IOException e) {
      closeQuietly(s);
      throw new StoreException("cannot serve the rendezvous store on " + host + ":" + port + ": " + e.getMessage(), e);
    }
  }

  public int port() { return socket.getLocalPort(); }

  private void acceptLoop() {
    while (!closed) {
      try {
        Socket c = socket.accept();
        connections.add(c);
        Thread.ofVirtual().name("c4j-store-conn").start(() -> serve(c));
      } catch (IOException e) {
        if (!closed) log.println("store: accept failed: " + e.getMessage());
      }
    }
  }

  private void serve(Socket c) {
    String who = String.valueOf(c.getRemoteSocketAddress());
    try (c) {
      try {
        converse(c, who);
      } catch (MalformedException | EOFException e) {
        log.println("store: dropped " + who + ": malformed message: " + e.getMessage());
        replyErrorQuietly(c, "malformed message: " + e.getMessage());
      }
    } catch (IOException e) {
      if (!closed && !(e instanceof SocketException)) log.println("store: connection " + who + " failed: " + e.getMessage());
    } finally {
      connections.remove(c);
    }
  }

  /** The hello, then requests until the client closes; throws on anything outside the protocol. */
  private void converse(Socket c, String who) throws IOException {
    c.setTcpNoDelay(true);
    var in = new DataInputStream(new BufferedInputStream(c.getInputStream()));
    var out = new DataOutputStream(new BufferedOutputStream(c.getOutputStream()));
    String refusal = hello(in);
    out.writeByte(refusal == null ? OK : ERROR);
    out.writeShort(VERSION);
    if (refusal != null) writeString(out, refusal);
    out.flush();
    if (refusal != null) {
      log.println("store: refused " + who + ": " + refusal);
      return;
    }
    while (!closed) {
      int len;
      try {
        len = in.readInt();
      } catch (EOFException e) {
        return; // the client closed
      }
      if (len < 1 || len > MAX_FRAME) throw new MalformedException("frame length " + len + " (1.." + MAX_FRAME + ")");
      byte[] frame = readExactly(in, len);
      handle(new DataInputStream(new ByteArrayInputStream(frame)), out);
      out.flush();
    }
  }

  /** Reads the hello; returns why it is refused, or null. */
  private String hello(DataInputStream in) throws IOException {
    int magic = in.readInt();
    if (magic != MAGIC) return "not a colossal4j store client (first bytes 0x" + Integer.toHexString(magic) + ")";
    short version = in.readShort();
    int n = in.readUnsignedShort();
    if (n > MAX_TOKEN) return "token of " + n + " bytes (at most " + MAX_TOKEN + ")";
    byte[] t = readExactly(in, n);
    if (version != VERSION) return "client speaks store protocol version " + version + ", this store speaks " + VERSION;
    if (!MessageDigest.isEqual(t, token)) return "wrong job token (the client belongs to another job, or C4J_RDZV_TOKEN differs)";
    return null;
  }

  private void handle(DataInputStream in, DataOutputStream out) throws IOException {
    byte op = in.readByte();
    String key = readString(in);
    switch (op) {
      case SET -> {
        put(key, readValue(in));
        out.writeByte(OK);
      }
      case GET -> {
        byte[] v = await(key, in.readLong());
        if (v == null) out.writeByte(TIMEOUT);
        else {
          out.writeByte(OK);
          writeValue(out, v);
        }
      }
      case ADD -> {
        long delta = in.readLong();
        out.writeByte(OK);
        out.writeLong(add(key, delta));
      }
      case CAS -> {
        byte[] expected = in.readByte() != 0 ? readValue(in) : null;
        byte[] desired = readValue(in);
        out.writeByte(OK);
        writeValue(out, cas(key, expected, desired));
      }
      default -> throw new MalformedException("unknown operation code " + op);
    }
  }

  private void put(String key, byte[] v) {
    lock.lock();
    try {
      values.put(key, v);
      changed.signalAll();
    } finally {
      lock.unlock();
    }
  }

  private byte[] await(String key, long timeoutMillis) {
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(Math.max(0, timeoutMillis));
    lock.lock();
    try {
      while (!values.containsKey(key)) {
        long left = deadline - System.nanoTime();
        if (left <= 0 || closed) return null;
        changed.awaitNanos(left);
      }
      return values.get(key);
    } catch (InterruptedException e) {
      return null;
    } finally {
      lock.unlock();
    }
  }

  private long add(String key, long delta) {
    lock.lock();
    try {
      byte[] old = values.get(key);
      long v = (old == null ? 0 : (old.length == 8 ? bytesLong(old) : 0)) + delta;
      values.put(key, longBytes(v));
      changed.signalAll();
      return v;
    } finally {
      lock.unlock();
    }
  }

  private byte[] cas(String key, byte[] expected, byte[] desired) {
    lock.lock();
    try {
      byte[] cur = values.get(key);
      if (expected == null ? cur == null : cur != null && Arrays.equals(cur, expected)) {
        values.put(key, desired);
        changed.signalAll();
        return desired;
      }
      return cur == null ? new byte[0] : cur;
    } finally {
      lock.unlock();
    }
  }

  private static void replyErrorQuietly(Socket c, String why) {
    try {
      var out = new DataOutputStream(c.getOutputStream());
      out.writeByte(ERROR);
      byte[] b = why.getBytes(StandardCharsets.UTF_8);
      out.writeShort(Math.min(b.length, MAX_KEY));
      out.write(b, 0, Math.min(b.length, MAX_KEY));
      out.flush();
    } catch (IOException ignored) {
      // the client is gone; nothing to tell it
    }
  }

  private static void closeQuietly(ServerSocket s) {
    try {
      if (s != null) s.close();
    } catch (IOException ignored) {
      // already failing; the bind error is what matters
    }
  }

  @Override public void close() {
    closed = true;
    closeQuietly(socket);
    for (Socket c : connections) {
      try {
        c.close();
      } catch (IOException ignored) {
        // the client went first
      }
    }
    lock.lock();
    try {
      changed.signalAll();
    } finally {
      lock.unlock();
    }
  }
}
