package io.colossal4j.distributed.cpu;

import java.lang.foreign.MemorySegment;

/**
 * Moves byte messages between the ranks of one job: {@link TcpTransport} between processes,
 * {@link LocalTransport} between threads of one JVM. Sends never wait for the receiver to post a receive
 * (receivers' mailboxes buffer), so no pattern of sends can deadlock. Thread-safe.
 */
sealed interface Transport permits TcpTransport, LocalTransport {
  int rank();

  int worldSize();

  Mailbox mailbox();

  /** Sends header + payload (header.payloadBytes() bytes of {@code payload}) to world rank {@code dst}. */
  void send(int dst, Header header, MemorySegment payload);

  /**
   * An identity of the host a rank runs on: ranks with equal keys can share memory. Two launchers on two
   * loopback addresses count as two hosts.
   */
  String hostKey(int rank);

  /** The job's id, unique per run; names shared-memory files. */
  String jobId();

  /** Marks this rank failed and tells every peer why (best effort). */
  void abort(String reason);

  /** Closes normally: peers see a goodbye, not a failure. Idempotent. */
  void close();
}
