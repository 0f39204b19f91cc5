package io.colossal4j.launch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The launcher with real rank processes (JVMs running the hidden {@code _dist-selftest} program). Bounds
 * are generous for a loaded 2-core machine; every child is stopped by the launcher before a test returns.
 */
@Timeout(value = 240, unit = java.util.concurrent.TimeUnit.SECONDS)   // a hang fails the test; the launcher then stops its ranks
class LauncherProcessTest {
  @TempDir Path logs;

  record Result(int code, String output, double seconds) {}

  Result launch(int nproc, List<String> args, int timeout) throws Exception {
    return launch(new LaunchOptions(nproc, 1, 0, "127.0.0.1", 0, null, "_dist-selftest", args, logs, timeout, 2));
  }

  static Result launch(LaunchOptions o) throws Exception {
    var env = new java.util.HashMap<>(System.getenv());
    env.put(EnvRendezvous.TOKEN, "two-node-test-token");
    var bytes = new ByteArrayOutputStream();
    long t0 = System.nanoTime();
    int code = new Launcher(o, new PrintStream(bytes, true, StandardCharsets.UTF_8), null, env).run();
    return new Result(code, bytes.toString(StandardCharsets.UTF_8), (System.nanoTime() - t0) / 1e9);
  }

  /** Rank 1 halts mid all-reduce; the job ends non-zero well within 30 s and every survivor names it. */
  @Test void killedRankBringsTheJobDownNamingRankOpAndGroup() throws Exception {
    Result r = launch(3, List.of("kill", "1", "1000"), 600);
    assertEquals(137, r.code(), r.output());
    assertTrue(r.seconds() < 60, "took " + r.seconds() + " s");
    for (int rank : new int[] {0, 2})
      assertTrue(r.output().contains("[rank " + rank + "] colossal _dist-selftest: rank " + rank + " of group world: all_reduce #"), r.output());
    assertTrue(r.output().contains("lost world rank 1"), r.output());
    assertTrue(r.output().contains("colossal run: FAILED. Rank 1 killed by signal 9"), r.output());
  }

  /** Rank 1 never joins; with a 3 s timeout rank 0 fails naming the op, and the launcher stops rank 1. */
  @Test void stuckCollectiveTimesOutAndTheLauncherStopsTheRest() throws Exception {
    Result r = launch(2, List.of("hang", "1"), 3);
    assertNotEquals(0, r.code(), r.output());
    assertTrue(r.output().contains("all_reduce #0 (16 f32) timed out after 3000 ms waiting for world rank 1"), r.output());
    assertTrue(r.output().contains("stopped by the launcher"), r.output());
  }

  @Test void masterPortInUseIsReported() throws Exception {
    try (ServerSocket taken = new ServerSocket(0, 1, java.net.InetAddress.getByName("127.0.0.1"))) {
      var o = new LaunchOptions(2, 1, 0, "127.0.0.1", taken.getLocalPort(), null, "_dist-selftest", List.of("collectives"), logs, 0, 10);
      var e = assertThrows(IllegalArgumentException.class, () -> launch(o));
      assertTrue(e.getMessage().contains("--master-port " + taken.getLocalPort() + " on 127.0.0.1 is already in use"), e.getMessage());
    }
  }

  /**
   * Two "nodes" on one machine: two launchers with --nnodes 2, node 0 on 127.0.0.1 (serving the store) and
   * node 1 on 127.0.0.2, each starting 2 ranks; all 4 run every collective across the "nodes" (each rank
   * checks its results against expectations computed locally), print through their launcher with the rank
   * prefix, and leave a log per rank.
   */
  @Test void twoNodesOnTwoLoopbackAddresses() throws Exception {
    int port;
    try (ServerSocket s = new ServerSocket(0)) { port = s.getLocalPort(); }
    var pool = Executors.newFixedThreadPool(2);
    try {
      var futures = List.of(0, 1).stream().map(node -> CompletableFuture.supplyAsync(() -> {
        try {
          return launch(new LaunchOptions(2, 2, node, "127.0.0.1", port, "127.0.0." + (node + 1), "_dist-selftest",
              List.of("collectives"), logs.resolve("node" + node), 120, 10));
        } catch (Exception e) {
          throw new RuntimeException(e);
        }
      }, pool)).toList();
      for (int node = 0; node < 2; node++) {
        Result r = futures.get(node).get();
        assertEquals(0, r.code(), "node " + node + ":\n" + r.output());
        for (int local = 0; local < 2; local++) {
          int rank = node * 2 + local;
          assertTrue(r.output().contains("[rank " + rank + "] rank " + rank + ": 145 checks passed"), r.output());
          assertTrue(Files.readString(logs.resolve("node" + node).resolve("rank" + rank + ".log")).contains("checks passed"));
        }
      }
    } finally {
      pool.shutdownNow();
    }
  }

  /**
   * SIGTERM (what Ctrl-C's SIGINT also triggers: the JVM's shutdown hooks) on a launcher whose ranks are
   * busy stops every rank; then a launcher killed with -9 (no hooks run): its ranks notice and exit by
   * themselves. The launcher runs as its own JVM here, as a user would start it.
   */
  @Test void stoppingTheLauncherStopsEveryRank() throws Exception {
    for (boolean forcibly : new boolean[] {false, true}) {
      List<String> cmd = List.of(ProcessHandle.current().info().command().orElseThrow(), "--add-modules", "jdk.incubator.vector",
          "-cp", System.getProperty("java.class.path"), "io.colossal4j.cli.Main", "run", "--nproc-per-node", "2",
          "--log-dir", logs.resolve("sig" + forcibly).toString(), "--command", "_dist-selftest", "hang", "1");
      Process launcher = new ProcessBuilder(cmd).redirectErrorStream(true).start();
      var reader = new java.io.BufferedReader(new java.io.InputStreamReader(launcher.getInputStream(), StandardCharsets.UTF_8));
      var seen = new StringBuilder();
      try {
        String line;
        while ((line = reader.readLine()) != null && !line.contains("not joining")) seen.append(line).append('\n');
        assertTrue(line != null, "rank 1 never started:\n" + seen);
        List<ProcessHandle> ranks = launcher.descendants().toList();
        assertEquals(2, ranks.stream().filter(h -> h.info().commandLine().orElse("").contains("_dist-selftest")).count(), ranks.toString());
        if (forcibly) launcher.destroyForcibly();
        else launcher.destroy();
        launcher.waitFor(30, java.util.concurrent.TimeUnit.SECONDS);
        for (ProcessHandle r : ranks) {
          r.onExit().get(30, java.util.concurrent.TimeUnit.SECONDS);
          assertTrue(!r.isAlive(), "rank process " + r.pid() + " survived its launcher (forcibly=" + forcibly + ")");
        }
      } finally {
        launcher.descendants().forEach(ProcessHandle::destroyForcibly);
        launcher.destroyForcibly();
      }
    }
  }
}
