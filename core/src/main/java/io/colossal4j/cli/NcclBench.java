package io.colossal4j.cli;

import io.colossal4j.backend.cuda.CudaBackend;
import io.colossal4j.backend.cuda.CudaOptions;
import io.colossal4j.backend.cuda.ffi.Nccl;
import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.distributed.Reduction;
import io.colossal4j.distributed.StoreServer;
import io.colossal4j.distributed.TcpStore;
import io.colossal4j.distributed.Work;
import io.colossal4j.distributed.nccl.NcclDistributed;
import io.colossal4j.distributed.nccl.NcclProcessGroup;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Device;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * {@code colossal bench nccl [--gpus N] [--min-mib A] [--max-mib B] [--kernel-cache DIR]}: bus bandwidth of our
 * NCCL process group's all-reduce, reduce-scatter and all-gather on N GPUs of this host (one rank per GPU, one
 * thread per rank in this JVM, as nccl-tests' {@code -t} mode), f32, sizes from A to B MiB in steps of 4x.
 *
 * <p>Definitions as nccl-tests (PERFORMANCE.md): S is the larger buffer (all-reduce: the tensor; reduce-scatter:
 * the input; all-gather: the output); algbw = S / t; busbw = algbw · 2(n-1)/n for all-reduce and algbw · (n-1)/n
 * for the other two. t is the mean of {@code iters} back-to-back operations between two synchronisations, after
 * warm-up. CSV on stdout ({@code op,bytes,time_us,algbw_gbs,busbw_gbs}); {@code scripts/bench_nccl_torch.py --java
 * <that csv>} measures torch.distributed on the same cases and prints both side by side.
 */
final class NcclBench implements Main.Command {
  static final String CSV_HEADER = "op,bytes,time_us,algbw_gbs,busbw_gbs";

  @Override public String summary() { return "NCCL all-reduce/reduce-scatter/all-gather bus bandwidth on this host's GPUs (CSV)"; }

  @Override public int run(String[] args) throws Exception {
    CudaOptions opts = CudaOptions.defaults(io.colossal4j.launch.HostEnvironment.current());
    int gpus = 2;
    long minMib = 1, maxMib = 1024;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--gpus" -> gpus = Integer.parseInt(args[++i]);
        case "--min-mib" -> minMib = Long.parseLong(args[++i]);
        case "--max-mib" -> maxMib = Long.parseLong(args[++i]);
        case "--kernel-cache" -> opts = opts.withKernelCacheDir(Path.of(args[++i]));
        default -> {
          System.err.println("colossal bench nccl: unknown option '" + args[i] + "' (valid: --gpus N, --min-mib A, --max-mib B, --kernel-cache DIR)");
          return 2;
        }
      }
    }
    int available = CudaBackend.deviceCount(opts);
    if (gpus < 2 || gpus > available) {
      System.err.println("colossal bench nccl: needs 2.." + available + " GPUs on this host (--gpus), got " + gpus);
      return 2;
    }
    List<CudaBackend> backends = new ArrayList<>();
    try {
      for (int g = 0; g < gpus; g++) backends.add(CudaBackend.open(Device.cuda(g), opts));
      System.err.println("colossal4j NCCL bench: " + gpus + " x " + backends.getFirst().describe() + ", NCCL "
          + Nccl.versionText(NcclDistributed.version(backends.getFirst())));
      List<ProcessGroup> world = join(backends);
      try {
        System.out.println(CSV_HEADER);
        long min = minMib << 20, max = maxMib << 20;
        for (String op : List.of("all_reduce", "reduce_scatter", "all_gather"))
          for (long bytes = min; bytes <= max; bytes *= 4) measure(world, op, bytes, System.out);
      } finally {
        world.reversed().forEach(ProcessGroup::close);
      }
    } finally {
      for (CudaBackend b : backends) b.close();
    }
    return 0;
  }

  /** The world groups of an in-JVM job over {@code backends} (rank r on backends[r]). */
  static List<ProcessGroup> join(List<CudaBackend> backends) { return join(backends, false); }

  /** As {@link #join(List)}, with the communicator streams' priority chosen ({@link NcclDistributed.Options}). */
  static List<ProcessGroup> join(List<CudaBackend> backends, boolean priorityStreams) {
    byte[] token = new byte[16];
    new SecureRandom().nextBytes(token);
    StoreServer server = StoreServer.start("127.0.0.1", 0, token, System.err);
    var options = new NcclDistributed.Options(Duration.ofMinutes(5), Duration.ofMinutes(2), false, priorityStreams);
    List<CompletableFuture<ProcessGroup>> joins = new ArrayList<>();
    try (ExecutorService threads = Executors.newFixedThreadPool(backends.size())) {
      for (int r = 0; r < backends.size(); r++) {
        int rank = r;
        joins.add(CompletableFuture.supplyAsync(() -> {
          TcpStore store = TcpStore.connect("127.0.0.1", server.port(), token, null, Duration.ofSeconds(30));
          TcpStore watch = TcpStore.connect("127.0.0.1", server.port(), token, null, Duration.ofSeconds(30));
          return NcclDistributed.join(store, watch, rank, backends.size(), backends.get(rank), options, System.err, () -> {
            store.close();
            watch.close();
            if (rank == 0) server.close();
          });
        }, threads));
      }
      return joins.stream().map(CompletableFuture::join).toList();
    }
  }

  /** One case on every rank at once; rank 0's time is reported (the ranks finish together). */
  private static void measure(List<ProcessGroup> world, String op, long bytes, PrintStream out) {
    int n = world.size();
    long elements = bytes / 4;
    int iters = bytes <= (16L << 20) ? 50 : bytes <= (256L << 20) ? 20 : 8;
    double[] seconds = new double[n];
    try (ExecutorService threads = Executors.newFixedThreadPool(n)) {
      List<CompletableFuture<Void>> runs = new ArrayList<>();
      for (int r = 0; r < n; r++) {
        int rank = r;
        runs.add(CompletableFuture.runAsync(() -> seconds[rank] = time(world.get(rank), op, elements, iters), threads));
      }
      runs.forEach(CompletableFuture::join);
    }
    double t = seconds[0], algbw = bytes / t / 1e9;
    double busbw = algbw * (op.equals("all_reduce") ? 2.0 * (n - 1) / n : (double) (n - 1) / n);
    out.printf("%s,%d,%.1f,%.2f,%.2f%n", op, bytes, t * 1e6, algbw, busbw);
    out.flush();
  }

  /** Mean seconds of one operation over {@code iters}, issued back to back after 3 warm-up operations. */
  private static double time(ProcessGroup g, String op, long elements, int iters) {
    CudaBackend gpu = ((NcclProcessGroup) g).backend();
    int n = g.size();
    long small = elements / n;
    Tensor big = Tensor.zeros(Shape.of(Math.toIntExact(small * n)), DType.F32, gpu);
    Tensor part = Tensor.zeros(Shape.of(Math.toIntExact(small)), DType.F32, gpu);
    Runnable once = () -> {
      Work w = switch (op) {
        case "all_reduce" -> g.allReduceAsync(big, Reduction.SUM);
        case "reduce_scatter" -> g.reduceScatterAsync(part, big, Reduction.SUM);
        case "all_gather" -> g.allGatherAsync(big, part);
        default -> throw new IllegalArgumentException("unknown operation " + op);
      };
      w.await();
    };
    for (int i = 0; i < 3; i++) once.run();
    g.barrier();
    gpu.synchronize();
    long t0 = System.nanoTime();
    for (int i = 0; i < iters; i++) once.run();
    gpu.synchronize();
    double s = (System.nanoTime() - t0) / 1e9 / iters;
    big.storage().release();
    part.storage().release();
    return s;
  }
}
