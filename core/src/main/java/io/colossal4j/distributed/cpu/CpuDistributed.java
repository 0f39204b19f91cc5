package io.colossal4j.distributed.cpu;

import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.distributed.RendezvousSpec;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.stream.IntStream;

/** Entry points of the CPU distributed backend. */
public final class CpuDistributed {
  private CpuDistributed() {}

  /** Options of an in-JVM job. {@code sharedMemory} routes all-reduces through the shared-memory path. */
  public record ThreadOptions(Duration timeout, boolean sharedMemory) {
    public ThreadOptions {
      if (timeout.isNegative() || timeout.isZero()) throw new IllegalArgumentException("timeout must be positive, got " + timeout);
    }
  }

  /**
   * The world groups of an in-JVM job of {@code worldSize} ranks: element i is rank i's group, to be used
   * by one thread per rank. Same algorithms and messages as between processes.
   */
  public static List<ProcessGroup> threads(int worldSize, ThreadOptions options) {
    return threads(worldSize, options, ShmAllReduce.SLICE, ShmSegmentAllReduce.SLOT);
  }

  /** With given shared-memory slice and segment sizes (tests use small ones to cross their boundaries cheaply). */
  static List<ProcessGroup> threads(int worldSize, ThreadOptions options, long shmSliceBytes, long shmSegmentBytes) {
    if (worldSize < 1) throw new IllegalArgumentException("world size must be >= 1, got " + worldSize);
    var fabric = new LocalTransport.Fabric(worldSize, "jvm-" + UUID.randomUUID().toString().substring(0, 8));
    List<Integer> all = IntStream.range(0, worldSize).boxed().toList();
    List<ProcessGroup> groups = new ArrayList<>();
    for (int r = 0; r < worldSize; r++) {
      var world = new CpuWorld(new LocalTransport(fabric, r), options.timeout(), options.sharedMemory(), shmSliceBytes, shmSegmentBytes, null);
      groups.add(world.group("world", all));
    }
    return groups;
  }

  public static List<ProcessGroup> threads(int worldSize) { return threads(worldSize, new ThreadOptions(Duration.ofMinutes(10), false)); }

  /**
   * Joins a job of separate processes as described by {@code spec} (rank 0 also serves the store) and returns
   * the world group. Store rejections and rendezvous failures are reported on {@code log} / thrown as
   * {@link io.colossal4j.distributed.StoreException}.
   */
  public static ProcessGroup connect(RendezvousSpec spec, java.io.PrintStream log) {
    CpuWorld world = TcpBootstrap.join(spec, log);
    return world.group("world", IntStream.range(0, spec.worldSize()).boxed().toList());
  }
}
