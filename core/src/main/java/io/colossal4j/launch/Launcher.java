package io.colossal4j.launch;

import java.io.IOException;
import java.io.PrintStream;
import java.net.BindException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.function.BiConsumer;

/**
 * {@code colossal run}: starts this node's ranks as JVMs (same java binary and classpath as the launcher),
 * each running the CLI command a single-process user would run, with the torchrun variables set; watches
 * them; and when one fails, gives the others a grace period to report and exit on their own (they notice
 * the dead peer within seconds), stops the rest, and prints a one-screen summary. Ctrl-C (or SIGTERM) stops
 * every rank. The job's token is generated here (one node) or taken from {@code C4J_RDZV_TOKEN} (several).
 */
public final class Launcher {
  private static final String MAIN = "io.colossal4j.cli.Main";
  private static final List<String> JVM_FLAGS = List.of("--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-Xss8m");

  private final LaunchOptions opt;
  private final PrintStream out;
  private final BiConsumer<Integer, String> listener;
  private final Map<String, String> env;
  private final List<RankProcess> ranks = new ArrayList<>();
  private volatile boolean finished;
  private volatile boolean stoppedOthers;

  /** {@code listener} (may be null) sees every line every rank prints, with its global rank. */
  public Launcher(LaunchOptions options, PrintStream out, BiConsumer<Integer, String> listener) {
    this(options, out, listener, System.getenv());
  }

  /** With the launcher's environment given explicitly (tests: the token of a multi-node job). */
  Launcher(LaunchOptions options, PrintStream out, BiConsumer<Integer, String> listener, Map<String, String> env) {
    this.opt = options;
    this.out = out;
    this.listener = listener;
    this.env = Map.copyOf(env);
  }

  /** Runs the job to its end; returns 0 when every rank succeeded, else the first failed rank's exit code. */
  public int run() throws IOException {
    int port = opt.nodeRank() == 0 ? checkPort(opt.masterAddr(), opt.masterPort()) : opt.masterPort();
    String token = opt.nnodes() == 1 ? randomHex(16) : env.get(EnvRendezvous.TOKEN);
    if (token == null || token.isEmpty())
      throw new IllegalArgumentException("with --nnodes > 1, set " + EnvRendezvous.TOKEN + " to the same secret for every node's launcher");
    String jobId = env.getOrDefault(EnvRendezvous.JOB_ID, opt.nnodes() == 1 ? randomHex(6) : Integer.toHexString(token.hashCode()));
    Files.createDirectories(opt.logDir());
    Thread hook = new Thread(this::interrupted, "c4j-launch-stop");
    Runtime.getRuntime().addShutdownHook(hook);
    try {
      for (int local = 0; local < opt.nprocPerNode(); local++) ranks.add(spawn(local, port, token, jobId));
      int code = monitor();
      finished = true;
      return code;
    } finally {
      finished = true;
      for (RankProcess r : ranks) r.kill();
      removeSharedMemory(jobId);
      try {
        Runtime.getRuntime().removeShutdownHook(hook);
      } catch (IllegalStateException ignored) {
        // already shutting down: the hook is running
      }
    }
  }

  /** On node 0 the master port must be free (0: pick one); the ranks' rank 0 binds it right after. */
  static int checkPort(String host, int port) {
    try (ServerSocket s = new ServerSocket()) {
      s.bind(new InetSocketAddress(InetAddress.getByName(host), port));
      return s.getLocalPort();
    } catch (BindException e) {
      throw new IllegalArgumentException("--master-port " + port + " on " + host + " is already in use (another job?) or " + host
          + " is not an address of this machine; choose another port, or omit --master-port on a single node to pick a free one");
    } catch (IOException e) {
      throw new IllegalArgumentException("cannot use master address " + host + ":" + port + ": " + e.getMessage());
    }
  }

  private RankProcess spawn(int local, int port, String token, String jobId) throws IOException {
    int rank = opt.nodeRank() * opt.nprocPerNode() + local;
    List<String> cmd = new ArrayList<>();
    cmd.add(ProcessHandle.current().info().command().orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString()));
    cmd.addAll(JVM_FLAGS);
    String extra = env.get("C4J_RANK_JAVA_OPTS");
    if (extra != null && !extra.isBlank()) cmd.addAll(List.of(extra.trim().split("\\s+")));
    cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), MAIN, opt.command()));
    cmd.addAll(opt.args());
    ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
    Map<String, String> e = pb.environment();
    e.putAll(env);
    e.put("RANK", Integer.toString(rank));
    e.put("LOCAL_RANK", Integer.toString(local));
    e.put("WORLD_SIZE", Integer.toString(opt.worldSize()));
    e.put("LOCAL_WORLD_SIZE", Integer.toString(opt.nprocPerNode()));
    e.put("GROUP_RANK", Integer.toString(opt.nodeRank()));
    e.put("MASTER_ADDR", opt.masterAddr());
    e.put("MASTER_PORT", Integer.toString(port));
    e.put(EnvRendezvous.TOKEN, token);
    e.put(EnvRendezvous.JOB_ID, jobId);
    e.put(EnvRendezvous.LAUNCHER_PID, Long.toString(ProcessHandle.current().pid()));
    if (opt.nodeAddr() != null) e.put(EnvRendezvous.NODE_ADDR, opt.nodeAddr());
    if (opt.timeoutSeconds() > 0) e.put(EnvRendezvous.TIMEOUT, Integer.toString(opt.timeoutSeconds()));
    int width = Integer.toString(opt.worldSize() - 1).length();
    String prefix = "[rank %" + width + "d] ";
    return new RankProcess(rank, pb.start(), opt.logDir().resolve("rank" + rank + ".log"), prefix.formatted(rank), out, listener);
  }

  /** Waits for the ranks; after the first failure, waits at most the grace period before stopping the rest. */
  private int monitor() {
    RankProcess first = null;
    long failedAt = 0;
    while (true) {
      boolean anyAlive = false;
      for (RankProcess r : ranks) {
        if (r.alive()) anyAlive = true;
        else if (first == null && r.process.exitValue() != 0) {
          first = r;
          failedAt = System.nanoTime();
        }
      }
      if (!anyAlive) break;
      if (first != null && System.nanoTime() - failedAt > opt.graceSeconds() * 1_000_000_000L) {
        stopAll();
        break;
      }
      sleep(50);
    }
    ranks.forEach(RankProcess::drain);
    if (first == null) return 0;
    printSummary(first);
    int code = first.process.exitValue();
    return code > 0 && code < 256 ? code : 1;
  }

  private void stopAll() {
    for (RankProcess r : ranks) if (r.alive()) stoppedOthers = true;
    ranks.forEach(RankProcess::stop);
    long deadline = System.nanoTime() + 5_000_000_000L;
    for (RankProcess r : ranks) {
      while (r.alive() && System.nanoTime() < deadline) sleep(20);
      r.kill();
    }
    for (RankProcess r : ranks) {
      try {
        r.process.waitFor();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }

  /** One screen: who failed first and how, then one line per rank (failed ranks first when there are many). */
  private void printSummary(RankProcess first) {
    List<String> lines = new ArrayList<>();
    lines.add("colossal run: FAILED. Rank " + first.rank + " " + first.ending() + " (exit code " + first.process.exitValue() + ")"
        + (stoppedOthers ? "; the launcher stopped the ranks still running after a " + opt.graceSeconds() + " s grace period." : "."));
    lines.add("  rank  pid       exit  how it ended                      last message");
    List<RankProcess> shown = new ArrayList<>(ranks);
    shown.sort((a, b) -> Boolean.compare(a.process.exitValue() == 0, b.process.exitValue() == 0));
    int limit = 16;
    for (RankProcess r : shown.subList(0, Math.min(limit, shown.size()))) {
      String msg = r.lastMessage();
      if (msg.length() > 150) msg = msg.substring(0, 147) + "...";
      lines.add("  %-5d %-9d %-5d %-33s %s".formatted(r.rank, r.process.pid(), r.process.exitValue(), r.ending(), msg));
    }
    if (shown.size() > limit) lines.add("  ... and " + (shown.size() - limit) + " more ranks");
    lines.add("  logs: " + opt.logDir().toAbsolutePath() + "/rank<R>.log");
    synchronized (out) {
      lines.forEach(out::println);
    }
  }

  /** Ctrl-C or SIGTERM on the launcher: stop every rank before the launcher goes. */
  private void interrupted() {
    if (finished) return;
    long alive = ranks.stream().filter(RankProcess::alive).count();
    out.println("colossal run: interrupted; stopping " + alive + " rank(s)");
    stopAll();
  }

  /** Shared-memory files of this job left behind by ranks that were killed before they could unlink them. */
  private static void removeSharedMemory(String jobId) {
    Path shm = Path.of("/dev/shm");
    if (!Files.isDirectory(shm)) return;
    try (var files = Files.list(shm)) {
      files.filter(p -> p.getFileName().toString().startsWith("c4j-" + jobId + "-")).forEach(p -> {
        try {
          Files.deleteIfExists(p);
        } catch (IOException ignored) {
          // another process removed it
        }
      });
    } catch (IOException ignored) {
      // nothing to clean
    }
  }

  private static String randomHex(int bytes) {
    byte[] b = new byte[bytes];
    new SecureRandom().nextBytes(b);
    return HexFormat.of().formatHex(b);
  }

  private static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("launcher interrupted", e);
    }
  }
}
