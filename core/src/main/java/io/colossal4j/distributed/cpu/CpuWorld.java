package io.colossal4j.distributed.cpu;

import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * What the groups of one rank share: the transport, the operation timeout, the group registry (so a
 * subgroup is created once) and whether shared memory may be used. Thread-safe.
 */
final class CpuWorld {
  final Transport transport;
  final Duration timeout;
  final boolean sharedMemory;
  final long shmSliceBytes;
  final long shmSegmentBytes;
  private final Map<List<Integer>, CpuProcessGroup> groups = new HashMap<>();
  private final AutoCloseable onClose;
  private boolean closed;

  CpuWorld(Transport transport, Duration timeout, boolean sharedMemory, AutoCloseable onClose) {
    this(transport, timeout, sharedMemory, ShmAllReduce.SLICE, ShmSegmentAllReduce.SLOT, onClose);
  }

  CpuWorld(Transport transport, Duration timeout, boolean sharedMemory, long shmSliceBytes, long shmSegmentBytes, AutoCloseable onClose) {
    this.shmSegmentBytes = shmSegmentBytes;
    this.transport = transport;
    this.shmSliceBytes = shmSliceBytes;
    this.timeout = timeout;
    this.sharedMemory = sharedMemory;
    this.onClose = onClose;
  }

  /** The group of these world ranks, created on first request. */
  synchronized CpuProcessGroup group(String label, List<Integer> worldRanks) {
    if (closed) throw new IllegalStateException("the process group was closed");
    return groups.computeIfAbsent(List.copyOf(worldRanks), members -> {
      int id = members.size() == transport.worldSize() && isIdentity(members) ? 0 : 1 + (members.hashCode() & 0x3fffffff);
      for (CpuProcessGroup g : groups.values())
        if (g.id() == id) throw new IllegalStateException("group id collision between " + g.worldRanks() + " and " + members);
      return new CpuProcessGroup(this, id, label, members);
    });
  }

  private static boolean isIdentity(List<Integer> m) {
    for (int i = 0; i < m.size(); i++) if (m.get(i) != i) return false;
    return true;
  }

  synchronized void close() {
    if (closed) return;
    closed = true;
    for (CpuProcessGroup g : groups.values()) g.shutdownExecutor();
    transport.close();
    try {
      if (onClose != null) onClose.close();
    } catch (Exception e) {
      // closing the store or sockets at exit: nothing left to report to
    }
  }
}
