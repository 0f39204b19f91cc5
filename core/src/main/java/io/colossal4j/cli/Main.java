package io.colossal4j.cli;

import java.util.Arrays;
import java.util.Map;
import java.util.TreeMap;

/**
 * The {@code colossal} command. Each subcommand is a class implementing {@link Command}; this class only
 * routes. Exit codes: 0 success, 1 failure at run time, 2 bad usage or configuration.
 */
public final class Main {
  private Main() {}

  /** A subcommand: gets its own arguments, returns the exit code. */
  public interface Command {
    String summary();

    int run(String[] args) throws Exception;
  }

  static Map<String, Command> commands() {
    Map<String, Command> m = new TreeMap<>();
    m.put("models", new ModelsCommand());
    m.put("run", new RunCommand());
    m.put("bench", new BenchCommand());
    m.put("_dist-selftest", new DistSelfTestCommand());
    m.put("train", new TrainCommand());
    m.put("split", new SplitCommand());
    m.put("kernels", new KernelsCommand());
    return m;
  }

  public static void main(String[] args) {
    System.exit(run(args));
  }

  public static int run(String[] args) {
    Map<String, Command> cmds = commands();
    String name = args.length == 0 ? "train" : args[0];
    if (name.equals("-h") || name.equals("--help") || name.equals("help")) {
      usage(cmds);
      return 0;
    }
    Command c = cmds.get(name);
    if (c == null) {
      System.err.println("colossal: unknown command '" + name + "'");
      usage(cmds);
      return 2;
    }
    try {
      return c.run(args.length == 0 ? new String[0] : Arrays.copyOfRange(args, 1, args.length));
    } catch (Exception e) {
      System.err.println("colossal " + name + ": " + e.getMessage());
      if (io.colossal4j.launch.HostEnvironment.current().containsKey("C4J_DEBUG")) e.printStackTrace();
      return 1;
    }
  }

  private static void usage(Map<String, Command> cmds) {
    System.err.println("usage: colossal <command> [args]\ncommands:");
    cmds.forEach((k, v) -> { if (!k.startsWith("_")) System.err.printf("  %-10s %s%n", k, v.summary()); });
  }
}
