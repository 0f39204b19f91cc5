package io.colossal4j.distributed;

import java.time.Duration;

/**
 * Everything a rank needs to join its job, already resolved from whatever launched it (the {@code launch}
 * package reads the environment; nothing here does).
 *
 * @param nodeAddr the address this rank listens on and is reached at by peers; null: the interface through
 *     which it reaches the master
 * @param token the job's secret: the store and the peers refuse connections that do not present it
 * @param jobId unique per run; names shared-memory files
 * @param timeout how long one collective may wait for a peer before the job is failed
 * @param connectTimeout how long to wait for the store and the peers at start-up
 */
public record RendezvousSpec(int rank, int worldSize, int localRank, int localWorldSize, String masterAddr, int masterPort,
    String nodeAddr, byte[] token, String jobId, Duration timeout, Duration connectTimeout) {
  public RendezvousSpec {
    if (worldSize < 1) throw new IllegalArgumentException("world size must be >= 1, got " + worldSize);
    if (rank < 0 || rank >= worldSize) throw new IllegalArgumentException("rank " + rank + " is out of range for world size " + worldSize + " (valid: 0.." + (worldSize - 1) + ")");
    if (localWorldSize < 1 || localRank < 0 || localRank >= localWorldSize)
      throw new IllegalArgumentException("local rank " + localRank + " is out of range for local world size " + localWorldSize);
    if (masterPort < 1 || masterPort > 65535) throw new IllegalArgumentException("master port " + masterPort + " is out of range; valid: 1..65535");
    if (masterAddr == null || masterAddr.isBlank()) throw new IllegalArgumentException("master address is empty");
    if (token == null || token.length == 0) throw new IllegalArgumentException("the job token is empty");
    if (timeout.isNegative() || timeout.isZero()) throw new IllegalArgumentException("collective timeout must be positive, got " + timeout);
    token = token.clone();
  }

  @Override public byte[] token() { return token.clone(); }

  @Override public String toString() {
    return "rank " + rank + "/" + worldSize + " (local " + localRank + "/" + localWorldSize + ") master " + masterAddr + ":" + masterPort;
  }
}
