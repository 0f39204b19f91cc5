package io.colossal4j.distributed.cpu;

import io.colossal4j.distributed.CollectiveException;
import java.io.EOFException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Ranks in separate processes, one TCP connection per pair (set up by {@link TcpBootstrap}). A reader
 * thread per peer drains its connection into the mailbox, so senders never block on a receiver that has
 * not posted a receive. A connection that ends without a goodbye fails the job: the peer exited or was
 * killed, and every wait of this rank throws naming it.
 */
final class TcpTransport implements Transport {
  private final int rank;
  private final SocketChannel[] peers;
  private final String[] hostKeys;
  private final String[] peerNames;
  private final String jobId;
  private final Mailbox mailbox;
  private final ReentrantLock[] writeLocks;
  private final boolean[] saidBye;
  private final Thread[] readers;
  private final AtomicBoolean aborted = new AtomicBoolean();
  private volatile boolean closing;
  /** How long close waits for the peers' ends of stream before closing the connections anyway. */
  private static final long CLOSE_WAIT_MILLIS = 5_000;

  TcpTransport(int rank, SocketChannel[] peers, String[] hostKeys, String[] peerNames, String jobId) {
    this.rank = rank;
    this.peers = peers;
    this.hostKeys = hostKeys;
    this.peerNames = peerNames;
    this.jobId = jobId;
    this.mailbox = new Mailbox(peers.length);
    this.writeLocks = new ReentrantLock[peers.length];
    this.saidBye = new boolean[peers.length];
    this.readers = new Thread[peers.length];
    for (int p = 0; p < peers.length; p++) {
      writeLocks[p] = new ReentrantLock();
      if (p == rank) continue;
      int peer = p;
      readers[p] = Thread.ofPlatform().daemon().name("c4j-recv-" + rank + "-from-" + p).start(() -> readLoop(peer));
    }
  }

  @Override public int rank() { return rank; }

  @Override public int worldSize() { return peers.length; }

  @Override public Mailbox mailbox() { return mailbox; }

  @Override public String hostKey(int r) { return hostKeys[r]; }

  @Override public String jobId() { return jobId; }

  @Override public void send(int dst, Header header, MemorySegment payload) {
    if (dst == rank) throw new IllegalStateException("send to self");
    writeLocks[dst].lock();
    try {
      ByteBuffer h = header.encode();
      long n = header.payloadBytes();
      if (n == 0) writeFully(peers[dst], h);
      else writeFully(peers[dst], h, payload.asSlice(0, n).asByteBuffer());
    } catch (IOException e) {
      var failure = new CollectiveException("cannot send to world rank " + dst + " " + peerNames[dst] + " (it exited or was killed): " + e.getMessage(), e);
      mailbox.fail(failure);
      throw failure;
    } finally {
      writeLocks[dst].unlock();
    }
  }

  private static void writeFully(SocketChannel ch, ByteBuffer... bufs) throws IOException {
    long left = 0;
    for (ByteBuffer b : bufs) left += b.remaining();
    while (left > 0) left -= ch.write(bufs);
  }

  private void readLoop(int peer) {
    SocketChannel ch = peers[peer];
    ByteBuffer hb = ByteBuffer.allocate(Header.BYTES);
    try {
      while (true) {
        hb.clear();
        readFully(ch, hb);
        Header h = Header.decode(hb.flip());
        if (h.src() != peer) throw new IOException("message claims to come from rank " + h.src());
        MemorySegment payload = h.payloadBytes() == 0 ? MemorySegment.NULL : Elementwise.buffer(h.payloadBytes());
        if (h.payloadBytes() > 0) readFully(ch, payload.asByteBuffer());
        switch (h.op()) {
          case ABORT -> mailbox.fail(new CollectiveException("world rank " + peer + " " + peerNames[peer] + " aborted the job: "
              + new String(payload.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8)));
          case WAKE -> mailbox.poke();
          case BYE -> {
            saidBye[peer] = true;
            mailbox.departed(peer, "closed its process group " + peerNames[peer]);
          }
          default -> mailbox.deliver(new Message(h, payload));
        }
      }
    } catch (IOException | IllegalArgumentException e) {
      if (closing || saidBye[peer]) return;
      String why = e instanceof EOFException ? "the connection closed" : e.getMessage();
      mailbox.fail(new CollectiveException("lost world rank " + peer + " " + peerNames[peer] + ": " + why + " (it exited or was killed)"));
    }
  }

  private static void readFully(SocketChannel ch, ByteBuffer b) throws IOException {
    while (b.hasRemaining()) if (ch.read(b) < 0) throw new EOFException();
  }

  @Override public void abort(String reason) {
    mailbox.fail(new CollectiveException(reason));
    if (!aborted.compareAndSet(false, true)) return;
    byte[] why = reason.getBytes(StandardCharsets.UTF_8);
    MemorySegment seg = Arena.ofAuto().allocate(Math.max(1, why.length));
    MemorySegment.copy(MemorySegment.ofArray(why), 0, seg, 0, why.length);
    for (int p = 0; p < peers.length; p++) {
      if (p == rank) continue;
      try {
        send(p, new Header(rank, 0, Header.COLLECTIVE, Op.ABORT, null, -1, 0, 0, why.length), seg);
      } catch (CollectiveException ignored) {
        // that peer is gone already
      }
    }
  }

  /**
   * Says goodbye to every peer, ends this side's streams, waits (at most {@link #CLOSE_WAIT_MILLIS}) for
   * the peers' ends of stream so their last messages are read rather than reset, then closes every
   * connection: after close returns this transport holds no socket, whether the peers closed or not.
   */
  @Override public void close() {
    if (closing) return;
    closing = true;
    for (int p = 0; p < peers.length; p++) {
      if (p == rank) continue;
      if (!aborted.get()) {
        try {
          send(p, new Header(rank, 0, Header.COLLECTIVE, Op.BYE, null, -1, 0, 0, 0), MemorySegment.NULL);
        } catch (CollectiveException ignored) {
          // the peer left first
        }
      }
      try {
        peers[p].shutdownOutput();
      } catch (IOException ignored) {
        // already closed by the peer
      }
    }
    long deadline = System.nanoTime() + CLOSE_WAIT_MILLIS * 1_000_000L;
    for (int p = 0; p < peers.length; p++) {
      if (p == rank) continue;
      try {
        readers[p].join(Math.max(1, (deadline - System.nanoTime()) / 1_000_000L));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        break;
      }
    }
    for (int p = 0; p < peers.length; p++) {
      if (p == rank) continue;
      try {
        peers[p].close();   // also ends a reader still blocked on a peer that has not closed yet
      } catch (IOException ignored) {
        // nothing left to release
      }
    }
  }
}
