package io.colossal4j.distributed.nccl;

import io.colossal4j.backend.cuda.CudaBackend;
import io.colossal4j.backend.cuda.CudaOptions;
import io.colossal4j.backend.cuda.ffi.CudaUnavailableException;
import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.distributed.StoreServer;
import io.colossal4j.distributed.TcpStore;
import io.colossal4j.tensor.Device;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Assumptions;

/**
 * Shared by the NCCL GPU tests: two GPU backends (cuda:0, cuda:1) opened once per JVM, and NCCL worlds of two
 * ranks over them, one rank per thread, meeting at a store served in this JVM. Without two usable GPUs every
 * test using them is skipped through a JUnit assumption that says why.
 */
final class TwoGpus {
  private TwoGpus() {}

  static final byte[] TOKEN = "nccl-test".getBytes(StandardCharsets.UTF_8);
  private static CudaBackend[] gpus;
  private static String unavailable;

  /** cuda:0 and cuda:1, or a skipped test saying why not. */
  static synchronized CudaBackend[] gpus() {
    if (gpus == null && unavailable == null) {
      try {
        // tests are a launcher of sorts: they pass the process environment to library discovery explicitly
        CudaOptions opts = CudaOptions.defaults(System.getenv());
        String cache = System.getProperty("c4j.kernelCache");
        if (cache != null) opts = opts.withKernelCacheDir(Path.of(cache));
        int count = CudaBackend.deviceCount(opts);
        if (count < 2) unavailable = "the NCCL tests need 2 GPUs, the driver sees " + count;
        else gpus = new CudaBackend[] {CudaBackend.open(Device.cuda(0), opts), CudaBackend.open(Device.cuda(1), opts)};
      } catch (CudaUnavailableException e) {
        String m = e.getMessage();
        unavailable = m.lines().limit(2).reduce((a, b) -> a + " " + b).orElse(m);
      }
    }
    Assumptions.assumeTrue(gpus != null, () -> "no usable CUDA GPU, skipping: " + unavailable);
    return gpus;
  }

  /** A fresh two-rank NCCL job (new store, new communicators); element r is rank r's world group on cuda:r. */
  static List<ProcessGroup> worlds(Duration timeout) {
    CudaBackend[] g = gpus();
    StoreServer server = StoreServer.start("127.0.0.1", 0, TOKEN, System.err);
    var options = new NcclDistributed.Options(timeout, Duration.ofSeconds(60), false);
    List<CompletableFuture<ProcessGroup>> joins = new ArrayList<>();
    var threads = java.util.concurrent.Executors.newFixedThreadPool(2);   // both ranks at once (the common pool may have one thread)
    for (int r = 0; r < 2; r++) {
      int rank = r;
      joins.add(CompletableFuture.supplyAsync(() -> {
        TcpStore store = TcpStore.connect("127.0.0.1", server.port(), TOKEN, null, Duration.ofSeconds(10));
        TcpStore watch = TcpStore.connect("127.0.0.1", server.port(), TOKEN, null, Duration.ofSeconds(10));
        return NcclDistributed.join(store, watch, rank, 2, g[rank], options, System.err, () -> {
          store.close();
          watch.close();
          if (rank == 0) server.close();
        });
      }, threads));
    }
    try {
      return joins.stream().map(CompletableFuture::join).toList();
    } finally {
      threads.shutdown();
    }
  }
}
