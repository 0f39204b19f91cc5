package io.colossal4j.distributed.nccl;

import io.colossal4j.backend.cuda.ffi.Nccl;
import io.colossal4j.distributed.Store;
import io.colossal4j.distributed.StoreException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * What every rank checks before its first NCCL call, so a bad job ends with a sentence instead of a hang
 * inside NCCL: the GPU a rank takes (cuda:LOCAL_RANK, which must exist), no GPU claimed by two ranks of one
 * host, and one NCCL version on every rank (communicators of different versions may not interoperate).
 * Pure logic over values exchanged through the rendezvous {@link Store}; the GPU-free tests drive it directly.
 */
public final class NcclPreflight {
  private NcclPreflight() {}

  /** What one rank announces: its host, the GPU ordinal it uses there and its NCCL_VERSION_CODE. */
  public record RankInfo(int rank, String host, int device, int ncclVersion) {
    String encode() { return host + "\n" + device + "\n" + ncclVersion; }

    static RankInfo decode(int rank, byte[] bytes) {
      String[] f = new String(bytes, StandardCharsets.UTF_8).split("\n");
      if (f.length != 3) throw new StoreException("rank " + rank + " published a malformed NCCL announcement: " + new String(bytes, StandardCharsets.UTF_8));
      return new RankInfo(rank, f[0], Integer.parseInt(f[1]), Integer.parseInt(f[2]));
    }
  }

  /**
   * The GPU ordinal for a rank: its local rank (one rank per GPU, torchrun's convention). Fails when the host has
   * fewer GPUs than ranks started on it, naming the numbers and what to change.
   */
  public static int device(int rank, int localRank, int localWorldSize, int deviceCount) {
    if (deviceCount < 1)
      throw new IllegalArgumentException("rank " + rank + " wants a GPU (device.kind=cuda) but the CUDA driver sees none on this host");
    if (localWorldSize > deviceCount || localRank >= deviceCount)
      throw new IllegalArgumentException("rank " + rank + " is local rank " + localRank + " of " + localWorldSize + " ranks on this host, but the host has "
          + deviceCount + " GPU(s) (cuda:0..cuda:" + (deviceCount - 1) + "); NCCL needs one GPU per rank: start at most " + deviceCount
          + " ranks per node (--nproc-per-node " + deviceCount + ") or check CUDA_VISIBLE_DEVICES");
    return localRank;
  }

  /**
   * Checks the ranks' announcements against each other; returns normally when they agree. Errors name every
   * rank involved, so the same sentence appears on every rank.
   */
  public static void check(List<RankInfo> ranks) {
    Map<Integer, List<Integer>> byVersion = new java.util.TreeMap<>();
    for (RankInfo r : ranks) byVersion.computeIfAbsent(r.ncclVersion(), v -> new ArrayList<>()).add(r.rank());
    if (byVersion.size() > 1) {
      StringBuilder sb = new StringBuilder("the ranks load different NCCL versions:");
      byVersion.forEach((v, rs) -> sb.append(' ').append(Nccl.versionText(v)).append(" on rank").append(rs.size() > 1 ? "s " : " ").append(rs).append(';'));
      sb.setLength(sb.length() - 1);
      throw new IllegalStateException(sb + "; every rank must load the same libnccl (set C4J_LIBNCCL or LD_LIBRARY_PATH alike on every node)");
    }
    Map<String, Integer> owner = new HashMap<>();
    for (RankInfo r : ranks) {
      Integer other = owner.putIfAbsent(r.host() + "/" + r.device(), r.rank());
      if (other != null)
        throw new IllegalStateException("ranks " + other + " and " + r.rank() + " both use cuda:" + r.device() + " on host " + r.host()
            + "; NCCL needs one GPU per rank (give each rank on a host its own LOCAL_RANK)");
    }
  }

  /** Publishes {@code mine} and checks it against every rank's announcement (waits for all within {@code timeout}). */
  public static List<RankInfo> exchange(Store store, int worldSize, RankInfo mine, Duration timeout) {
    store.set("nccl/preflight/" + mine.rank(), mine.encode().getBytes(StandardCharsets.UTF_8));
    List<RankInfo> all = new ArrayList<>();
    for (int r = 0; r < worldSize; r++) all.add(RankInfo.decode(r, store.get("nccl/preflight/" + r, timeout)));
    check(all);
    return all;
  }

  /**
   * The communicator's unique id: member 0 makes it and publishes it under {@code key}; the others wait for it.
   * Each key is used by one communicator of the job, once.
   */
  public static byte[] uniqueId(Store store, String key, boolean creator, java.util.function.Supplier<byte[]> make, Duration timeout) {
    if (creator) {
      byte[] id = make.get();
      if (id.length != Nccl.UNIQUE_ID_BYTES) throw new IllegalStateException("an NCCL unique id has " + Nccl.UNIQUE_ID_BYTES + " bytes, got " + id.length);
      store.set(key, id);
      return id;
    }
    byte[] id = store.get(key, timeout);
    if (id.length != Nccl.UNIQUE_ID_BYTES) throw new StoreException("the NCCL unique id under '" + key + "' has " + id.length + " bytes, expected " + Nccl.UNIQUE_ID_BYTES);
    return id;
  }
}
