package io.colossal4j.train.config;

import java.nio.file.Path;

/**
 * Reporting. A run writes to {@code <dir>/<name>/}: metrics.jsonl, TensorBoard event files, the plot.
 * {@code every}: steps between metric records; {@code progress}: {@code auto} (a bar on a terminal, plain lines
 * otherwise), {@code bar}, {@code plain} or {@code off}.
 */
public record LoggingConfig(Path dir, int every, Progress progress, boolean tensorboard, boolean plot) {
  public enum Progress { AUTO, BAR, PLAIN, OFF }

  public LoggingConfig {
    ConfigException.atLeast("every", every, 1);
  }

  public static LoggingConfig defaults() { return new LoggingConfig(Path.of("runs"), 10, Progress.AUTO, true, true); }
}
