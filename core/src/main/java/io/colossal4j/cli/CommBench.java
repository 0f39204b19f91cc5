package io.colossal4j.cli;

import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.distributed.Reduction;
import io.colossal4j.launch.LaunchOptions;
import io.colossal4j.launch.Launcher;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.MemoryCategory;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.io.OutputStream;
import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * {@code colossal bench comm}: f32 all-reduce between local rank processes started by the launcher, from
 * 1 KiB to 256 MiB, for 2 and 4 ranks, next to this machine's single-thread memory-copy bandwidth measured
 * in the same run (the ceiling for the shared-memory path): once at the start and, because a shared
 * machine's speed drifts, again by rank 0 right after each size's trials on a buffer of that size. Bandwidths follow nccl-tests: algbw = bytes /
 * time, busbw = algbw * 2(n-1)/n; the time is the slowest rank's mean over a fixed number of iterations
 * (best of three trials), next to the CPU time rank 0's thread spent per all-reduce in that trial (the
 * synchronous all-reduce runs on the caller's thread; waiting spins, yields or sleeps, so this is the time
 * the rank held a core, not its work alone).
 * Two rows per size: an ordinary tensor (copied into the shared-memory slots and back) and a view of a
 * shared buffer from {@link ProcessGroup#allocateShared} (reduced in place across the ranks' buffers, as the
 * data-parallel gradient buckets are), each with its own copy measurement right after its trials.
 * Prints a Markdown table (kept in docs/benchmarks/comm.md).
 */
final class CommBench implements Main.Command {
  private static final long KIB = 1024, MIB = 1024 * KIB;

  @Override public String summary() { return "all-reduce bus bandwidth and latency between local ranks (CPU backend)"; }

  @Override public int run(String[] args) throws Exception {
    long min = KIB, max = 256 * MIB;
    int[] worlds = {2, 4};
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--min" -> min = bytes(args[++i]);
        case "--max" -> max = bytes(args[++i]);
        case "--ranks" -> worlds = java.util.Arrays.stream(args[++i].split(",")).mapToInt(Integer::parseInt).toArray();
        default -> throw new IllegalArgumentException("unknown option " + args[i] + "; usage: colossal bench comm [--min 1K] [--max 256M] [--ranks 2,4]");
      }
    }
    double copy = copyBandwidth();
    System.out.printf("single-thread memory copy (256 MiB, best of 5): %.2f GB/s%n", copy);
    Map<Integer, Map<Row, double[]>> results = new TreeMap<>();
    for (int n : worlds) results.put(n, launch(n, min, max));
    printTable(copy, results, String.join(" ", args));
    return 0;
  }

  private static long bytes(String s) {
    String u = s.toUpperCase();
    long mult = u.endsWith("K") ? KIB : u.endsWith("M") ? MIB : u.endsWith("G") ? 1024 * MIB : 1;
    return Long.parseLong(mult == 1 ? u : u.substring(0, u.length() - 1)) * mult;
  }

  /** Bytes copied per second by one thread, 256 MiB between two fresh buffers, the best of 5 after a warm-up. */
  static double copyBandwidth() {
    long n = 256 * MIB;
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment a = arena.allocate(n, 64), b = arena.allocate(n, 64);
      a.fill((byte) 1);
      MemorySegment.copy(a, 0, b, 0, n);
      double best = 0;
      for (int i = 0; i < 5; i++) {
        long t0 = System.nanoTime();
        MemorySegment.copy(a, 0, b, 0, n);
        best = Math.max(best, n / ((System.nanoTime() - t0) / 1e9) / 1e9);
      }
      return best;
    }
  }

  /** What the all-reduce ran on: an ordinary tensor, or a view of a shared buffer ({@link ProcessGroup#allocateShared}). */
  enum Buffer {
    ORDINARY("ordinary"), SHARED("shared buffer");

    final String label;

    Buffer(String label) { this.label = label; }
  }

  record Row(long bytes, Buffer buffer) implements Comparable<Row> {
    @Override public int compareTo(Row o) { return bytes != o.bytes ? Long.compare(bytes, o.bytes) : buffer.compareTo(o.buffer); }
  }

  /** Runs the rank program on n local ranks and collects rank 0's RESULT lines: (bytes, buffer) -> {usec, algbw, busbw, copy GB/s, rank 0 cpu usec}. */
  private static Map<Row, double[]> launch(int n, long min, long max) throws Exception {
    Map<Row, double[]> rows = new TreeMap<>();
    Path logs = Files.createTempDirectory("c4j-bench-comm");
    var options = new LaunchOptions(n, 1, 0, "127.0.0.1", 0, null, "_dist-selftest",
        List.of("bench-allreduce", Long.toString(min), Long.toString(max)), logs, 120, 10);
    PrintStream quiet = new PrintStream(OutputStream.nullOutputStream());
    int code = new Launcher(options, quiet, (rank, line) -> {
      if (rank != 0 || !line.startsWith("RESULT ")) return;
      String[] f = line.split(" ");
      Row row = new Row(Long.parseLong(f[2]), Buffer.valueOf(f[1]));
      synchronized (rows) {
        rows.put(row, new double[] {Double.parseDouble(f[3]), Double.parseDouble(f[4]), Double.parseDouble(f[5]), Double.parseDouble(f[6]), Double.parseDouble(f[7])});
      }
      System.out.printf("  %d ranks %10s %-13s %10.1f us (rank 0 on a core %.1f us)  busbw %7.2f GB/s  copy %7.2f GB/s%n", n, human(row.bytes()), row.buffer().label,
          Double.parseDouble(f[3]), Double.parseDouble(f[7]), Double.parseDouble(f[5]), Double.parseDouble(f[6]));
    }).run();
    if (code != 0) throw new IllegalStateException("the benchmark ranks failed (exit " + code + "); logs in " + logs);
    try (var files = Files.walk(logs)) {   // logs are kept only when something failed
      files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    }
    return rows;
  }

  private static void printTable(double copy, Map<Integer, Map<Row, double[]>> results, String args) {
    List<String> out = new ArrayList<>();
    out.add("");
    out.add("Command: `./colossal bench comm" + (args.isEmpty() ? "" : " " + args) + "`, " + LocalDate.now() + ", " + cpuModel()
        + ", " + Runtime.getRuntime().availableProcessors() + " cores");
    out.add("Single-thread memory copy at the start (256 MiB, best of 5): %.2f GB/s; per row, the copy column is rank 0's".formatted(copy)
        + " single-thread copy of the same buffer right after that row's all-reduce trials (best of 3). Buffer: an ordinary tensor"
        + " (copied through the shared-memory slots) or a view of a shared buffer (allocateShared: reduced in place, as the gradient buckets)");
    out.add("");
    StringBuilder head = new StringBuilder("| size | buffer |"), rule = new StringBuilder("|---:|---|");
    for (int n : results.keySet()) {
      head.append(" ").append(n).append(" ranks time (us) | rank 0 cpu (us) | algbw (GB/s) | busbw (GB/s) | copy (GB/s) | busbw / copy |");
      rule.append("---:|---:|---:|---:|---:|---:|");
    }
    out.add(head.toString());
    out.add(rule.toString());
    var sizes = new java.util.TreeSet<Row>();
    results.values().forEach(m -> sizes.addAll(m.keySet()));
    for (Row s : sizes) {
      StringBuilder row = new StringBuilder("| " + human(s.bytes()) + " | " + s.buffer().label + " |");
      for (var m : results.values()) {
        double[] v = m.get(s);
        row.append(v == null ? " | | | | | |" : " %.1f | %.1f | %.2f | %.2f | %.2f | %.2f |".formatted(v[0], v[4], v[1], v[2], v[3], v[2] / v[3]));
      }
      out.add(row.toString());
    }
    out.add("");
    for (var e : results.entrySet()) {
      for (Buffer b : Buffer.values()) {
        double[] big = e.getValue().get(new Row(64 * MIB, b)), small = e.getValue().get(new Row(4 * KIB, b));
        if (big != null) out.add("%d ranks, 64 MiB, %s: busbw %.2f GB/s = %.2f x the 64 MiB copy bandwidth measured right after it, %.2f GB/s (target >= 0.5 for 2 ranks); %.1f us per all-reduce, of which rank 0 was on a core %.1f us"
            .formatted(e.getKey(), b.label, big[2], big[2] / big[3], big[3], big[0], big[4]));
        if (small != null) out.add("%d ranks, 4 KiB, %s: %.1f us (target < 100 us)".formatted(e.getKey(), b.label, small[0]));
      }
    }
    out.forEach(System.out::println);
  }

  private static String cpuModel() {
    try {
      for (String l : Files.readAllLines(Path.of("/proc/cpuinfo"))) if (l.startsWith("model name")) return l.substring(l.indexOf(':') + 1).trim();
    } catch (Exception ignored) {
      // not Linux: no model name
    }
    return System.getProperty("os.arch");
  }

  static String human(long b) {
    return b >= MIB ? (b / MIB) + " MiB" : b >= KIB ? (b / KIB) + " KiB" : b + " B";
  }

  /** Single-thread copy bandwidth of t's bytes into another buffer, best of 3, in GB/s (the other ranks wait). */
  private static double copyNow(Tensor t) {
    long bytes = t.numel() * 4;
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment src = CpuBackend.segment(t), dst = arena.allocate(bytes, 64);
      MemorySegment.copy(src, 0, dst, 0, bytes);
      double best = 0;
      for (int i = 0; i < 3; i++) {
        long t0 = System.nanoTime();
        MemorySegment.copy(src, 0, dst, 0, bytes);
        best = Math.max(best, bytes / ((System.nanoTime() - t0) / 1e9) / 1e9);
      }
      return best;
    }
  }

  /**
   * The rank side: for each size (doubling from min to max) and each {@link Buffer}, a warm-up, then three
   * trials of a fixed iteration count (the same on every rank, from the size alone), each timed between
   * barriers and taken at the slowest rank; rank 0 prints the best trial's mean. Best of three because this
   * machine is shared: a trial that another process interrupted says nothing about the algorithm. The shared
   * rows use views of one shared buffer of {@code max} bytes (allocated once: shared buffers live until the
   * group closes).
   */
  static void rankLoop(ProcessGroup g, CpuBackend cpu, long min, long max) {
    // JIT warm-up of every path first: small sizes get too few iterations of their own for C2 to compile
    // the collective loops, and a training job runs far more collectives than this benchmark.
    Tensor small = Tensor.zeros(Shape.of(1024), DType.F32, cpu), large = Tensor.zeros(Shape.of(2 << 20), DType.F32, cpu);
    Tensor shared = g.allocateShared(Shape.of((int) Math.max(max / 4, 2 << 20)), DType.F32, cpu, MemoryCategory.GRADIENT);
    Tensor sharedSmall = shared.view(Shape.of(1024), new long[] {1}, 0), sharedLarge = shared.view(Shape.of(2 << 20), new long[] {1}, 0);
    for (int i = 0; i < 4000; i++) g.allReduce(small, Reduction.SUM);
    for (int i = 0; i < 2000; i++) g.allReduce(sharedSmall, Reduction.SUM);
    for (int i = 0; i < 20; i++) g.allReduce(large, Reduction.SUM);
    for (int i = 0; i < 20; i++) g.allReduce(sharedLarge, Reduction.SUM);
    large.storage().release();
    for (long bytes = min; bytes <= max; bytes *= 2) {
      Tensor t = Tensor.zeros(Shape.of((int) (bytes / 4)), DType.F32, cpu);
      timeRow(g, cpu, t, bytes, Buffer.ORDINARY);
      t.storage().release();
      timeRow(g, cpu, shared.view(Shape.of((int) (bytes / 4)), new long[] {1}, 0), bytes, Buffer.SHARED);
    }
  }

  /** One row: warm-up, three timed trials at the slowest rank, rank 0's copy of the same bytes right after; rank 0 prints RESULT. */
  private static void timeRow(ProcessGroup g, CpuBackend cpu, Tensor t, long bytes, Buffer buffer) {
    int n = g.size(), iters = (int) Math.max(3, Math.min(500, (64 * MIB) / bytes));
    for (int i = 0; i < Math.max(5, Math.min(iters, 50)); i++) g.allReduce(t, Reduction.SUM);
    double best = Double.MAX_VALUE, bestCpu = 0;
    var threads = java.lang.management.ManagementFactory.getThreadMXBean();
    for (int trial = 0; trial < 3; trial++) {
      g.barrier();
      long t0 = System.nanoTime(), c0 = threads.getCurrentThreadCpuTime();
      for (int i = 0; i < iters; i++) g.allReduce(t, Reduction.SUM);
      double cpuUs = (threads.getCurrentThreadCpuTime() - c0) / 1e3 / iters;
      Tensor slowest = Tensor.scalar((System.nanoTime() - t0) / 1e3 / iters, DType.F64, cpu);
      g.allReduce(slowest, Reduction.MAX);
      if (slowest.item() < best) bestCpu = cpuUs;
      best = Math.min(best, slowest.item());
    }
    double algbw = bytes / (best * 1e-6) / 1e9, busbw = algbw * 2 * (n - 1) / n;
    double copy = g.rank() == 0 ? copyNow(t) : 0;    // the ceiling, measured now: this machine's speed drifts
    g.barrier();
    if (g.rank() == 0) System.out.printf("RESULT %s %d %.2f %.3f %.3f %.3f %.2f%n", buffer.name(), bytes, best, algbw, busbw, copy, bestCpu);
  }
}
