package io.colossal4j.launch;

import java.util.Map;

/** The process environment, read here and passed down explicitly (the rest of the code never reads it). */
public final class HostEnvironment {
  private HostEnvironment() {}

  public static Map<String, String> current() { return Map.copyOf(System.getenv()); }

  /** Whether standard output is an interactive terminal (progress bars) rather than a file or pipe. */
  public static boolean interactive() { return System.console() != null && System.console().isTerminal(); }
}
