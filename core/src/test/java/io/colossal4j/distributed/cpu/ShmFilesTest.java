package io.colossal4j.distributed.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Stale shared-memory files: a file is removed by the sweep only when no process holds its lock and it is
 * older than the grace period; a process killed with SIGKILL (no exit hooks) leaves a file the next sweep
 * removes. The holder is a separate JVM ({@link Holder}), since locks are per process.
 */
class ShmFilesTest {
  /** Creates c4j-test-<random> in the shared-memory directory, last modified ageMillis ago. */
  private static Path file(long ageMillis) throws Exception {
    Path f = ShmFiles.path("test-" + UUID.randomUUID().toString().substring(0, 8));
    Files.write(f, new byte[64]);
    Files.setLastModifiedTime(f, FileTime.fromMillis(System.currentTimeMillis() - ageMillis));
    return f;
  }

  @Test void anOldUnlockedFileIsRemovedAndAYoungOneKept() throws Exception {
    Path old = file(2 * ShmFiles.STALE_MILLIS), young = file(0);
    try {
      Set<String> removed = ShmFiles.sweepStale(old.getParent(), ShmFiles.STALE_MILLIS);
      assertTrue(removed.contains(old.getFileName().toString()), removed.toString());
      assertFalse(Files.exists(old));
      assertTrue(Files.exists(young), "a file younger than the grace period may be one just being created");
    } finally {
      Files.deleteIfExists(old);
      Files.deleteIfExists(young);
    }
  }

  /** A file mapped by a live process is kept however old; once that process is SIGKILLed, it is removed. */
  @Test void aLiveHoldersFileIsKeptAndASigkilledOnesRemoved() throws Exception {
    Path f = ShmFiles.path("test-" + UUID.randomUUID().toString().substring(0, 8));
    List<String> cmd = List.of(ProcessHandle.current().info().command().orElseThrow(), "--add-modules", "jdk.incubator.vector",
        "-cp", System.getProperty("java.class.path"), Holder.class.getName(), f.toString());
    Process holder = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    try {
      var out = new BufferedReader(new InputStreamReader(holder.getInputStream(), StandardCharsets.UTF_8));
      String line;
      while ((line = out.readLine()) != null && !line.equals("mapped")) {
        // JVM warnings before the holder's line
      }
      assertEquals("mapped", line, "the holder process did not map " + f);
      Files.setLastModifiedTime(f, FileTime.fromMillis(System.currentTimeMillis() - 2 * ShmFiles.STALE_MILLIS));
      assertFalse(ShmFiles.sweepStale(f.getParent(), ShmFiles.STALE_MILLIS).contains(f.getFileName().toString()));
      assertTrue(Files.exists(f), "a live process's file was removed");

      holder.destroyForcibly();   // SIGKILL: no exit hook deletes the file
      assertTrue(holder.waitFor(30, TimeUnit.SECONDS));
      assertTrue(Files.exists(f), "expected the killed holder to leave its file behind");
      assertTrue(ShmFiles.sweepStale(f.getParent(), ShmFiles.STALE_MILLIS).contains(f.getFileName().toString()));
      assertFalse(Files.exists(f));
    } finally {
      holder.destroyForcibly();
      Files.deleteIfExists(f);
    }
  }

  /** A process that maps a file the way the collectives do, says so, and waits to be killed. */
  public static final class Holder {
    public static void main(String[] args) throws Exception {
      ShmFiles.map(Path.of(args[0]), 4096);
      System.out.println("mapped");
      System.out.flush();
      Thread.sleep(120_000);
    }
  }
}
