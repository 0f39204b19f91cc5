package io.colossal4j.train.checkpoint;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;

/**
 * Write-aside-then-rename: the content goes to a temporary sibling, is forced to disk, and is renamed over the
 * target in one atomic step, so a reader (or a process restarted after a crash) sees either the old file or
 * the complete new one, never a prefix.
 */
final class AtomicFiles {
  private AtomicFiles() {}

  @FunctionalInterface
  interface Body {
    void write(FileChannel channel) throws IOException;
  }

  static void write(Path target, Body body) throws IOException {
    Path dir = target.toAbsolutePath().getParent();
    Files.createDirectories(dir);
    Path tmp = dir.resolve("." + target.getFileName() + ".tmp-" + ProcessHandle.current().pid());
    try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING,
        StandardOpenOption.WRITE)) {
      body.write(ch);
      ch.force(true);
    } catch (IOException | RuntimeException e) {
      Files.deleteIfExists(tmp);
      throw e;
    }
    move(tmp, target);
    fsyncDirectory(dir);
  }

  /** Renames atomically; the target is replaced if it exists (a plain file) . */
  static void move(Path from, Path to) throws IOException {
    try {
      Files.move(from, to, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    } catch (AtomicMoveNotSupportedException e) {
      throw new IOException("the file system of " + to + " cannot rename atomically, so checkpoints there could be torn", e);
    }
  }

  /** Makes a rename durable: on Linux a directory opened for reading can be fsync'ed; elsewhere this is best effort. */
  static void fsyncDirectory(Path dir) {
    try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
      ch.force(true);
    } catch (IOException e) {
      // Not supported on every platform (e.g. Windows); the rename itself is still atomic.
    }
  }
}
