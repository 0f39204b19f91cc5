package io.colossal4j.cli;

import io.colossal4j.launch.LaunchOptions;
import io.colossal4j.launch.Launcher;

/** {@code colossal run}: launches this node's ranks of a distributed job (see {@link LaunchOptions#USAGE}). */
final class RunCommand implements Main.Command {
  @Override public String summary() { return "launch N ranks of a job on this node (torchrun-compatible)"; }

  @Override public int run(String[] args) throws Exception {
    if (args.length == 0 || args[0].equals("-h") || args[0].equals("--help")) {
      System.err.println(LaunchOptions.USAGE);
      return args.length == 0 ? 2 : 0;
    }
    LaunchOptions options;
    try {
      options = LaunchOptions.parse(args);
    } catch (IllegalArgumentException e) {
      System.err.println("colossal run: " + e.getMessage());
      return 2;
    }
    try {
      return new Launcher(options, System.out, null).run();
    } catch (IllegalArgumentException e) {   // refused before any rank started: port in use, token missing
      System.err.println("colossal run: " + e.getMessage());
      return 2;
    }
  }
}
