package io.colossal4j.distributed.cpu;

import io.colossal4j.distributed.CollectiveException;
import java.lang.foreign.MemorySegment;

/**
 * Ranks that are threads of one JVM: a send copies the payload into the receiver's mailbox. Used by fast
 * tests, with exactly the collective algorithms the TCP transport runs.
 */
final class LocalTransport implements Transport {
  /** The mailboxes of all ranks of one in-JVM job. */
  static final class Fabric {
    final Mailbox[] mailboxes;
    final String jobId;

    Fabric(int worldSize, String jobId) {
      this.mailboxes = new Mailbox[worldSize];
      for (int i = 0; i < worldSize; i++) mailboxes[i] = new Mailbox(worldSize);
      this.jobId = jobId;
    }
  }

  private final Fabric fabric;
  private final int rank;
  private volatile boolean closed;

  LocalTransport(Fabric fabric, int rank) {
    this.fabric = fabric;
    this.rank = rank;
  }

  @Override public int rank() { return rank; }

  @Override public int worldSize() { return fabric.mailboxes.length; }

  @Override public Mailbox mailbox() { return fabric.mailboxes[rank]; }

  @Override public void send(int dst, Header header, MemorySegment payload) {
    if (header.op() == Op.WAKE) {
      fabric.mailboxes[dst].poke();
      return;
    }
    MemorySegment copy = Elementwise.buffer(header.payloadBytes());
    MemorySegment.copy(payload, 0, copy, 0, header.payloadBytes());
    fabric.mailboxes[dst].deliver(new Message(header, copy));
  }

  @Override public String hostKey(int r) { return "in-jvm"; }

  @Override public String jobId() { return fabric.jobId; }

  @Override public void abort(String reason) {
    for (int i = 0; i < fabric.mailboxes.length; i++)
      fabric.mailboxes[i].fail(new CollectiveException(i == rank ? reason : "world rank " + rank + " aborted the job: " + reason));
  }

  @Override public void close() {
    if (closed) return;
    closed = true;
    for (int i = 0; i < fabric.mailboxes.length; i++)
      if (i != rank) fabric.mailboxes[i].departed(rank, "closed its process group");
  }

  /** Simulates this rank dying (tests): peers see a lost connection, as with a killed process. */
  void crash() {
    closed = true;
    for (int i = 0; i < fabric.mailboxes.length; i++)
      if (i != rank) fabric.mailboxes[i].fail(new CollectiveException("lost world rank " + rank + " (it exited or was killed)"));
  }
}
