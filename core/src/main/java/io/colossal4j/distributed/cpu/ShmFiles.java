package io.colossal4j.distributed.cpu;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.HashSet;
import java.util.Set;

/**
 * The shared-memory files of the CPU collectives: {@code c4j-<name>} in /dev/shm (else the temporary
 * directory), and how a dead job's files are told from a live one's. Every process that maps a file holds
 * a shared lock on it (a POSIX record lock, which the kernel drops when the process dies, however it dies,
 * SIGKILL included) until the name is removed. A file nobody holds a lock on, older than
 * {@link #STALE_MILLIS}, belongs to a job whose processes are all gone; {@link #sweepStale} (run once per
 * process, before its first mapping) removes such files, so a job killed before it could unlink its files
 * (its launcher killed with SIGKILL while a rank waited for a peer) leaves nothing for long. Thread-safe.
 */
final class ShmFiles {
  private ShmFiles() {}

  /**
   * A lock-free file younger than this is kept: its creator may be between creating and locking it, or be
   * a build without the locks whose peers have not arrived yet; past the default collective timeout (10
   * minutes) such a job has failed anyway.
   */
  static final long STALE_MILLIS = 15 * 60_000;
  static final String PREFIX = "c4j-";

  /** Files this process has open: never swept by it (closing a channel would drop this process's lock on them). */
  private static final Set<Path> OPEN = new HashSet<>();
  private static boolean swept;

  static Path dir() {
    Path shm = Path.of("/dev/shm");
    return Files.isDirectory(shm) ? shm : Path.of(System.getProperty("java.io.tmpdir"));
  }

  static Path path(String name) { return dir().resolve(PREFIX + name); }

  /**
   * A mapped file, the channel that holds this process's lock on it, and the exit hook that deletes its
   * name if the JVM exits first (not run on SIGKILL: that is what the locks are for). Release it with
   * {@link #release} once every member has mapped it, or when the job fails.
   */
  record Mapped(Path file, MemorySegment memory, FileChannel lockHolder, Thread atExit) {}

  /**
   * Creates or opens {@code file}, locks it (shared), extends it to {@code size} bytes (zero-filled) and maps
   * it. The mapping is never unmapped (it goes with the process): the slot rings are read by the groups'
   * threads until the very end, and nothing needs them unmapped earlier.
   */
  static Mapped map(Path file, long size) throws IOException { return map(file, size, Arena.ofShared()); }

  /**
   * As {@link #map(Path, long)}, in the caller's {@code arena}: closing it unmaps the file (safely: a thread
   * still touching the memory then fails with an exception, as for any closed shared arena).
   */
  static Mapped map(Path file, long size, Arena arena) throws IOException {
    sweepOnce(file.getParent());
    FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE);
    try {
      synchronized (ShmFiles.class) {
        OPEN.add(file);
      }
      lockShared(ch);
      if (ch.size() < size) ch.write(java.nio.ByteBuffer.allocate(1), size - 1);
      MemorySegment mem = ch.map(FileChannel.MapMode.READ_WRITE, 0, size, arena);
      Thread atExit = new Thread(() -> deleteName(file), "c4j-shm-cleanup");
      Runtime.getRuntime().addShutdownHook(atExit);
      return new Mapped(file, mem, ch, atExit);
    } catch (IOException | RuntimeException e) {
      release(new Mapped(file, MemorySegment.NULL, ch, null));
      throw e;
    }
  }

  private static void lockShared(FileChannel ch) throws IOException {
    try {
      ch.lock(0, Long.MAX_VALUE, true);
    } catch (OverlappingFileLockException inThisProcess) {
      // another member in this JVM (ranks as threads) holds the process's lock already
    } catch (UnsupportedOperationException | IOException noLocks) {
      // a file system without record locks: the file is only removed by its job
    }
  }

  /**
   * Deletes the file's name (if still there), closes the channel that held the lock and cancels the exit
   * hook; the mapping stays valid. Call once per mapping.
   */
  static void release(Mapped m) {
    deleteName(m.file);
    try {
      m.lockHolder.close();
    } catch (IOException e) {
      // closing a file in /dev/shm does not fail in practice; nothing to undo
    }
    synchronized (ShmFiles.class) {
      OPEN.remove(m.file);
    }
    if (m.atExit == null) return;
    try {
      Runtime.getRuntime().removeShutdownHook(m.atExit);
    } catch (IllegalStateException exiting) {
      // the JVM is shutting down: the hook deletes (again) harmlessly
    }
  }

  private static void deleteName(Path file) {
    try {
      Files.deleteIfExists(file);
    } catch (IOException e) {
      // another member removed it first
    }
  }

  private static void sweepOnce(Path dir) {
    synchronized (ShmFiles.class) {
      if (swept) return;
      swept = true;
    }
    sweepStale(dir, STALE_MILLIS);
  }

  /** Removes the {@code c4j-*} files in dir that no process holds locked and that are older than minAgeMillis; returns their names. */
  static Set<String> sweepStale(Path dir, long minAgeMillis) {
    Set<String> removed = new HashSet<>();
    try (var files = Files.list(dir)) {
      for (Path f : files.filter(p -> p.getFileName().toString().startsWith(PREFIX)).toList())
        if (removeIfStale(f, minAgeMillis)) removed.add(f.getFileName().toString());
    } catch (IOException e) {
      // the directory cannot be listed: nothing to sweep
    }
    return removed;
  }

  private static boolean removeIfStale(Path f, long minAgeMillis) {
    synchronized (ShmFiles.class) {
      if (OPEN.contains(f)) return false;
    }
    try {
      if (System.currentTimeMillis() - Files.getLastModifiedTime(f).toMillis() < minAgeMillis) return false;
      try (FileChannel ch = FileChannel.open(f, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
        FileLock lock = ch.tryLock();
        if (lock == null) return false;   // a live process holds it
        Files.deleteIfExists(f);
        return true;
      }
    } catch (NoSuchFileException | OverlappingFileLockException gone) {
      return false;
    } catch (IOException | UnsupportedOperationException e) {
      return false;   // another user's file, or no record locks here: leave it
    }
  }
}
