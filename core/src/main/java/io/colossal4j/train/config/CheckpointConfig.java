package io.colossal4j.train.config;

import java.nio.file.Path;
import java.util.Optional;

/**
 * Checkpointing. {@code dir} defaults to {@code <logging.dir>/<name>/checkpoints}; {@code every}: optimizer steps
 * between saves (0 = at the end of each epoch); {@code keep}: newest checkpoints kept; {@code resume}: {@code none},
 * {@code latest} (the newest in {@code dir}, or a fresh start when there is none) or a checkpoint directory.
 */
public record CheckpointConfig(Optional<Path> dir, int every, int keep, Resume resume) {
  public CheckpointConfig {
    ConfigException.atLeast("every", every, 0);
    ConfigException.atLeast("keep", keep, 1);
  }

  public static CheckpointConfig defaults() { return new CheckpointConfig(Optional.empty(), 0, 2, new Resume.None()); }

  /** Where a run starts from. Written as a plain string in YAML. */
  public sealed interface Resume {
    record None() implements Resume {}

    record Latest() implements Resume {}

    record From(Path checkpoint) implements Resume {}

    static Resume parse(String text) {
      return switch (text.trim()) {
        case "none", "false", "" -> new None();
        case "latest", "true" -> new Latest();
        default -> new From(Path.of(text.trim()));
      };
    }

    /** The YAML spelling, inverse of {@link #parse}. */
    default String text() {
      return switch (this) {
        case None n -> "none";
        case Latest l -> "latest";
        case From f -> f.checkpoint().toString();
      };
    }
  }
}
