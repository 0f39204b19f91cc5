package io.colossal4j.launch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Shared buffers between real rank processes of one host (JVMs started by the launcher running the hidden
 * {@code _dist-selftest} program): in-place all-reduces checked by every rank against expectations computed
 * locally, and a rank killed in the middle of one.
 */
@Timeout(value = 240, unit = java.util.concurrent.TimeUnit.SECONDS)
class SharedBufferProcessTest {
  @TempDir Path logs;

  LauncherProcessTest.Result launch(int nproc, List<String> args) throws Exception {
    return LauncherProcessTest.launch(new LaunchOptions(nproc, 1, 0, "127.0.0.1", 0, null, "_dist-selftest", args, logs, 600, 2));
  }

  /** 2 and 3 ranks: 55 in-place all-reduces each (3 dtypes, 5 sizes, every reduction), all in shared memory. */
  @Test void inPlaceAllReducesBetweenProcesses() throws Exception {
    for (int n : new int[] {2, 3}) {
      var r = launch(n, List.of("shared"));
      assertEquals(0, r.code(), r.output());
      for (int rank = 0; rank < n; rank++)
        assertTrue(r.output().contains("[rank " + rank + "] rank " + rank + ": 55 shared checks passed (in shared memory: true)"), r.output());
    }
  }

  /** Rank 1 halts mid in-place all-reduce; the job ends non-zero well within 30 s of it and the survivors name it. */
  @Test void killedRankBringsTheJobDown() throws Exception {
    var r = launch(3, List.of("kill-shared", "1", "1000"));
    assertEquals(137, r.code(), r.output());
    assertTrue(r.seconds() < 60, "took " + r.seconds() + " s");
    for (int rank : new int[] {0, 2})
      assertTrue(r.output().contains("[rank " + rank + "] colossal _dist-selftest: rank " + rank + " of group world: all_reduce #"), r.output());
    assertTrue(r.output().contains("lost world rank 1"), r.output());
    assertTrue(r.output().contains("colossal run: FAILED. Rank 1 killed by signal 9"), r.output());
  }
}
