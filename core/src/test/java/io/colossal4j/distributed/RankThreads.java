package io.colossal4j.distributed;

import static org.junit.jupiter.api.Assertions.fail;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/** Runs one body per rank, each on its own thread, and returns their results (rethrowing the first failure). */
public final class RankThreads {
  private RankThreads() {}

  public interface Body<T> { T run(ProcessGroup group) throws Exception; }

  /** Bounded: a test that would hang fails after {@code limitSeconds}, naming the ranks still running. */
  public static <T> List<T> run(List<ProcessGroup> groups, int limitSeconds, Body<T> body) {
    ExecutorService pool = Executors.newFixedThreadPool(groups.size());
    try {
      List<Future<T>> futures = new ArrayList<>();
      for (ProcessGroup g : groups) futures.add(pool.submit(() -> body.run(g)));
      List<T> out = new ArrayList<>();
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(limitSeconds);
      for (int r = 0; r < futures.size(); r++) {
        try {
          out.add(futures.get(r).get(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS));
        } catch (ExecutionException e) {
          throw e.getCause() instanceof RuntimeException re ? re : new RuntimeException(e.getCause());
        } catch (TimeoutException e) {
          fail("rank " + r + " did not finish within " + limitSeconds + " s");
        } catch (InterruptedException e) {
          throw new RuntimeException(e);
        }
      }
      return out;
    } finally {
      pool.shutdownNow();
    }
  }
}
