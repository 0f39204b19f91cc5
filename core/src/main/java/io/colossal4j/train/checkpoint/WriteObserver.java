package io.colossal4j.train.checkpoint;

import java.io.IOException;
import java.nio.file.Path;

/**
 * Sees every chunk written to a checkpoint file. Production code uses {@link #NONE}; tests throw from it to
 * simulate a process dying in the middle of a save.
 */
@FunctionalInterface
interface WriteObserver {
  WriteObserver NONE = (file, bytesSoFar) -> {};

  void written(Path file, long bytesSoFar) throws IOException;
}
