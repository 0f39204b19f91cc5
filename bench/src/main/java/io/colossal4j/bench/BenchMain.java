package io.colossal4j.bench;

/**
 * Entry point of {@code ./colossal bench <what>}: {@code cpu} runs the CPU kernel benchmarks against PyTorch CPU
 * (libtorch through DJL) and OpenBLAS. Prints one line per case ending in {@code ratio=<ours/peer throughput>}.
 * Without {@code --only}, each case group runs in a JVM of its own: the peers' native thread pools (PyTorch's,
 * oneDNN's, OpenBLAS's) keep taking CPU after a group inside the process that ran it (after the convolution group,
 * a third of both cores while the next group ran: docs/benchmarks/cpu.md), which would slow every later group's
 * sides alike but unevenly.
 */
public final class BenchMain {
  private BenchMain() {}

  public static void main(String[] args) {
    String what = args.length == 0 ? "" : args[0];
    switch (what) {
      case "cpu" -> {
        if (onlyArg(args) != null) CpuBench.run(threadsArg(args), onlyArg(args));
        else for (String group : CpuBench.ORDER) runAlone(group, threadsArg(args));
      }
      case "train-step" -> TrainStepBench.run(threadsArg(args));
      default -> {
        System.err.println("usage: colossal bench cpu|train-step [--threads N] [--only sgemm|conv|rows|elementwise]   (got: " + String.join(" ", args) + ")");
        System.exit(2);
      }
    }
  }

  /** {@code bench cpu --only group} in a child JVM with this one's runtime, options and class path, output inherited. */
  private static void runAlone(String group, int threads) {
    var self = java.lang.management.ManagementFactory.getRuntimeMXBean();
    java.util.List<String> cmd = new java.util.ArrayList<>();
    cmd.add(java.nio.file.Path.of(System.getProperty("java.home"), "bin", "java").toString());
    cmd.addAll(self.getInputArguments());
    cmd.addAll(java.util.List.of("-cp", System.getProperty("java.class.path"), BenchMain.class.getName(), "cpu", "--threads", Integer.toString(threads), "--only", group));
    try {
      int rc = new ProcessBuilder(cmd).inheritIO().start().waitFor();
      if (rc != 0) throw new IllegalStateException("bench cpu --only " + group + " exited with " + rc);
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException("cannot start a JVM for bench cpu --only " + group + ": " + e.getMessage(), e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while bench cpu --only " + group + " ran", e);
    }
  }

  /** The case group named by {@code --only} (cpu bench), or null for all. */
  private static String onlyArg(String[] args) {
    for (int i = 1; i + 1 < args.length; i++) if (args[i].equals("--only")) return args[i + 1];
    return null;
  }

  private static int threadsArg(String[] args) {
    for (int i = 1; i + 1 < args.length; i++)
      if (args[i].equals("--threads")) {
        int n = Integer.parseInt(args[i + 1]);
        if (n < 1) throw new IllegalArgumentException("--threads must be >= 1, got " + n);
        return n;
      }
    return 2;
  }
}
