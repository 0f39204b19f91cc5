package io.colossal4j.distributed.nccl;

import io.colossal4j.backend.cuda.CudaBackend;
import io.colossal4j.backend.cuda.ffi.Nccl;
import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.distributed.RendezvousSpec;
import io.colossal4j.distributed.Store;
import io.colossal4j.distributed.StoreException;
import io.colossal4j.distributed.StoreServer;
import io.colossal4j.distributed.TcpStore;
import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.stream.IntStream;

/**
 * Entry points of the NCCL distributed backend: one rank per GPU, each rank's world group over NCCL
 * communicators, with the rendezvous store (the same one the CPU backend uses) carrying the unique ids, the
 * pre-flight checks ({@link NcclPreflight}) and failure notices.
 */
public final class NcclDistributed {
  private NcclDistributed() {}

  /**
   * @param timeout how long one operation may run before the job is failed
   * @param connectTimeout how long to wait for peers at communicator creation
   * @param haltOnFailure exit the process 30 s after a failure (launched ranks; never in tests)
   * @param priorityStreams run collectives on streams of the highest priority, so their kernels take SMs as soon
   *     as compute kernels free them (a gradient bucket's all-reduce then ends soon after it is launched instead
   *     of trailing the backward); off by default: on 2 H200s it measured no faster (docs/benchmarks/nccl.md)
   */
  public record Options(Duration timeout, Duration connectTimeout, boolean haltOnFailure, boolean priorityStreams) {
    public Options(Duration timeout, Duration connectTimeout, boolean haltOnFailure) { this(timeout, connectTimeout, haltOnFailure, false); }

    NcclWorld.Options world() { return new NcclWorld.Options(timeout, connectTimeout, haltOnFailure, priorityStreams); }
  }

  /** The GPU ordinal for this rank ({@code cuda:LOCAL_RANK}), or an error when the host has too few GPUs. */
  public static int device(RendezvousSpec spec, int deviceCount) {
    return NcclPreflight.device(spec.rank(), spec.localRank(), spec.localWorldSize(), deviceCount);
  }

  /**
   * Joins a job of separate processes as {@code spec} describes (rank 0 also serves the store); {@code backend}
   * is this rank's GPU ({@link #device}). Checks NCCL versions and GPU ownership on every rank before returning
   * the world group.
   */
  public static ProcessGroup connect(RendezvousSpec spec, CudaBackend backend, PrintStream log) {
    Options options = new Options(spec.timeout(), spec.connectTimeout(), true);
    StoreServer server = spec.rank() == 0 ? StoreServer.start(spec.masterAddr(), spec.masterPort(), spec.token(), log) : null;
    TcpStore store = null, watch = null;
    try {
      store = TcpStore.connect(spec.masterAddr(), spec.masterPort(), spec.token(), spec.nodeAddr(), spec.connectTimeout());
      watch = TcpStore.connect(spec.masterAddr(), spec.masterPort(), spec.token(), spec.nodeAddr(), spec.connectTimeout());
      byte[] mine = Integer.toString(spec.worldSize()).getBytes(StandardCharsets.UTF_8);
      byte[] agreed = store.compareAndSet("world_size", null, mine);
      if (!MessageDigest.isEqual(agreed, mine))
        throw new StoreException("rank " + spec.rank() + " was started with world size " + spec.worldSize() + " but another rank with "
            + new String(agreed, StandardCharsets.UTF_8) + "; every rank must get the same WORLD_SIZE");
      TcpStore s = store, w = watch;
      return join(store, watch, spec.rank(), spec.worldSize(), backend, options, log, () -> leave(spec, s, w, server));
    } catch (RuntimeException e) {
      if (store != null) store.close();
      if (watch != null) watch.close();
      if (server != null) server.close();
      throw e;
    }
  }

  /**
   * The world group of {@code rank} in a job whose ranks reach {@code store}; {@code watchStore} is a second
   * connection to it for the watchdog. Ranks may be threads of one process (one GPU each) or processes.
   * {@code onClose} runs when the world group closes (releasing the store).
   */
  public static ProcessGroup join(Store store, Store watchStore, int rank, int worldSize, CudaBackend backend, Options options,
      PrintStream log, AutoCloseable onClose) {
    backend.enter();
    // the global arena: libnccl stays loaded (its proxy threads may outlive a communicator's destruction)
    Nccl nccl = Nccl.load(backend.locator(), Arena.global());
    NcclPreflight.exchange(store, worldSize, new NcclPreflight.RankInfo(rank, hostName(), backend.device().index(), nccl.version()),
        options.connectTimeout());
    NcclWorld world = new NcclWorld(backend, nccl, store, watchStore, rank, worldSize, options.world(), log, onClose);
    return world.group("world", IntStream.range(0, worldSize).boxed().toList());
  }

  /** NCCL_VERSION_CODE of the library this backend's locator finds (for benchmark reports). */
  public static int version(CudaBackend backend) {
    return Nccl.load(backend.locator(), Arena.global()).version();
  }

  private static String hostName() {
    try {
      return InetAddress.getLocalHost().getHostName();
    } catch (UnknownHostException e) {
      return "localhost";
    }
  }

  /** Ranks other than 0 say goodbye; rank 0 waits (bounded) for them before it stops serving the store. */
  private static void leave(RendezvousSpec spec, TcpStore store, TcpStore watch, StoreServer server) {
    try {
      if (spec.rank() != 0) store.set("nccl/bye/" + spec.rank(), new byte[] {1});
      else for (int j = 1; j < spec.worldSize(); j++) store.get("nccl/bye/" + j, Duration.ofSeconds(10));
    } catch (RuntimeException ignored) {
      // a peer died or the store is gone: leaving anyway
    }
    store.close();
    watch.close();
    if (server != null) server.close();
  }
}
