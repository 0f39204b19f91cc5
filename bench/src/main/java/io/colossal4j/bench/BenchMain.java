package io.colossal4j.bench;

/**
 * Entry point of {@code ./colossal bench <what>}: {@code cpu} runs the CPU kernel benchmarks against PyTorch CPU
 * (libtorch through DJL) and OpenBLAS in one process. Prints one line per case ending in
 * {@code ratio=<ours/peer throughput>}.
 */
public final class BenchMain {
  private BenchMain() {}

  public static void main(String[] args) {
    String what = args.length == 0 ? "" : args[0];
    switch (what) {
      case "cpu" -> CpuBench.run(threadsArg(args), onlyArg(args));
      case "train-step" -> TrainStepBench.run(threadsArg(args));
      default -> {
        System.err.println("usage: colossal bench cpu|train-step [--threads N] [--only sgemm|conv|rows|elementwise]   (got: " + String.join(" ", args) + ")");
        System.exit(2);
      }
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
