package io.colossal4j.cli;

import java.util.Arrays;
import java.util.Map;
import java.util.TreeMap;

/**
 * {@code colossal bench <name> [args]}: routes to a named benchmark. A benchmark is a {@link Main.Command};
 * add one by putting it in {@link #benchmarks()} (the {@code ./colossal} script sends {@code cpu} and
 * {@code train-step} to the separate bench module before this is reached).
 */
final class BenchCommand implements Main.Command {
  static Map<String, Main.Command> benchmarks() {
    Map<String, Main.Command> m = new TreeMap<>();
    m.put("comm", new CommBench());
    m.put("gpu", new GpuBench());
    m.put("pipeline", new PipelineBench());
    m.put("ddp", new DdpBench());
    m.put("nccl", new NcclBench());
    m.put("nccl-dp", new NcclDpBench());
    m.put("nccl-pp", new NcclPpBench());
    return m;
  }

  @Override public String summary() { return "run a named benchmark: " + String.join(", ", benchmarks().keySet()); }

  @Override public int run(String[] args) throws Exception {
    Map<String, Main.Command> all = benchmarks();
    if (args.length == 0 || !all.containsKey(args[0])) {
      if (args.length > 0) System.err.println("colossal bench: unknown benchmark '" + args[0] + "'");
      System.err.println("usage: colossal bench <name> [args]\nbenchmarks:");
      all.forEach((k, v) -> System.err.printf("  %-12s %s%n", k, v.summary()));
      System.err.println("  (cpu and train-step run from the bench module through ./colossal)");
      return args.length == 0 ? 2 : 2;
    }
    return all.get(args[0]).run(Arrays.copyOfRange(args, 1, args.length));
  }
}
