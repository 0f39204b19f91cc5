package io.colossal4j.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.concurrent.atomic.AtomicIntegerArray;
import org.junit.jupiter.api.Test;

/**
 * {@link CpuParallel#forEachChunk}: every chunk exactly once, all done on return, failures rethrown, whether the
 * workers are spinning for the next call or parked; each thread's own share first, a stalled worker's taken from the
 * far end; calls from several threads at once; workers end on close.
 */
class CpuParallelTest {
  @Test void everyChunkRunsExactlyOnceAndIsDoneOnReturn() {
    for (int threads : new int[] {1, 2, 3})
      try (CpuParallel par = new CpuParallel(threads)) {
        for (int chunks : new int[] {0, 1, 2, 7, 1000}) {
          for (int call = 0; call < 20; call++) { // later calls meet helpers left over from earlier ones
            AtomicIntegerArray runs = new AtomicIntegerArray(chunks);
            par.forEachChunk(chunks, c -> {
              if (c % 3 == 0) Thread.onSpinWait();
              runs.incrementAndGet((int) c);
            });
            for (int c = 0; c < chunks; c++) assertEquals(1, runs.get(c), "chunk " + c + " of " + chunks + " on " + threads + " threads");
          }
        }
      }
  }

  /**
   * The owned shares: the caller runs its own share (the first half of the chunks, on two threads) from the front,
   * in order; a worker held up inside its first chunk does not hold the call up: the caller takes the rest of the
   * worker's share from the far end (highest chunk first), and every chunk still runs exactly once.
   */
  @Test void theCallerRunsItsShareInOrderAndTakesAStalledWorkersFromTheEnd() throws Exception {
    try (CpuParallel par = new CpuParallel(2)) {
      Thread caller = Thread.currentThread();
      int chunks = 16;
      for (int call = 0; call < 20; call++) {
        AtomicIntegerArray runs = new AtomicIntegerArray(chunks);
        java.util.List<Long> byCaller = java.util.Collections.synchronizedList(new java.util.ArrayList<>());
        java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.atomic.AtomicInteger finished = new java.util.concurrent.atomic.AtomicInteger();
        par.forEachChunk(chunks, c -> {
          if (Thread.currentThread() == caller) byCaller.add(c);
          else if (runs.get((int) c) == 0 && finished.get() < chunks - 1) {
            try {
              release.await(10, java.util.concurrent.TimeUnit.SECONDS);   // held up until the caller has run all the rest
            } catch (InterruptedException e) {
              Thread.currentThread().interrupt();
            }
          }
          runs.incrementAndGet((int) c);
          if (finished.incrementAndGet() >= chunks - 1) release.countDown();
        });
        for (int c = 0; c < chunks; c++) assertEquals(1, runs.get(c), "chunk " + c + " in call " + call);
        java.util.List<Long> own = byCaller.stream().filter(c -> c < chunks / 2).toList();
        java.util.List<Long> taken = byCaller.stream().filter(c -> c >= chunks / 2).toList();
        assertEquals(java.util.stream.LongStream.range(0, chunks / 2).boxed().toList(), own, "the caller's own share, in order, call " + call);
        for (int i = 1; i < taken.size(); i++)
          assertEquals(taken.get(i - 1) - 1, (long) taken.get(i), "the worker's chunks taken from the far end, call " + call + ": " + taken);
        if (!taken.isEmpty()) assertEquals(chunks - 1, (long) taken.getFirst(), "the first chunk taken is the last one, call " + call);
      }
    }
  }

  @Test void callsAfterTheWorkersHaveParkedStillUseThem() throws InterruptedException {
    try (CpuParallel par = new CpuParallel(2)) {
      for (int call = 0; call < 5; call++) {
        Thread.sleep(2 + CpuParallel.SPIN_NANOS / 1_000_000);   // past the spin: the worker has parked
        AtomicIntegerArray runs = new AtomicIntegerArray(64);
        java.util.Set<String> threads = java.util.concurrent.ConcurrentHashMap.newKeySet();
        par.forEachChunk(64, c -> {
          threads.add(Thread.currentThread().getName());
          long until = System.nanoTime() + 200_000;   // long enough chunks for a woken worker to take some
          while (System.nanoTime() < until) Thread.onSpinWait();
          runs.incrementAndGet((int) c);
        });
        for (int c = 0; c < 64; c++) assertEquals(1, runs.get(c), "chunk " + c + " of call " + call);
        if (call == 4) org.junit.jupiter.api.Assertions.assertTrue(threads.stream().anyMatch(n -> n.startsWith("c4j-cpu-")),
            "a parked worker was woken and took chunks: " + threads);
      }
    }
  }

  @Test void callsFromSeveralThreadsAtOnceEachRunTheirOwnChunks() throws Exception {
    try (CpuParallel par = new CpuParallel(3)) {
      Thread[] callers = new Thread[4];
      java.util.concurrent.atomic.AtomicReference<Throwable> failure = new java.util.concurrent.atomic.AtomicReference<>();
      for (int i = 0; i < callers.length; i++) {
        callers[i] = new Thread(() -> {
          try {
            for (int call = 0; call < 200; call++) {
              AtomicIntegerArray runs = new AtomicIntegerArray(37);
              par.forEachChunk(37, c -> runs.incrementAndGet((int) c));
              for (int c = 0; c < 37; c++) assertEquals(1, runs.get(c), "chunk " + c);
            }
          } catch (Throwable t) {
            failure.compareAndSet(null, t);
          }
        });
        callers[i].start();
      }
      for (Thread t : callers) t.join();
      if (failure.get() != null) throw new AssertionError(failure.get());
    }
  }

  @Test void workersEndOnClose() throws InterruptedException {
    CpuParallel par = new CpuParallel(3);
    par.forEachChunk(10, c -> {});
    Thread[] workers = par.workerThreads();
    assertEquals(2, workers.length);
    par.close();
    for (Thread t : workers) {
      t.join(5_000);
      org.junit.jupiter.api.Assertions.assertFalse(t.isAlive(), t.getName() + " still running after close");
    }
  }

  @Test void aFailingChunkIsRethrownAfterTheOthersFinish() {
    try (CpuParallel par = new CpuParallel(2)) {
      AtomicIntegerArray runs = new AtomicIntegerArray(64);
      IllegalStateException e = assertThrows(IllegalStateException.class, () -> par.forEachChunk(64, c -> {
        runs.incrementAndGet((int) c);
        if (c == 17) throw new IllegalStateException("chunk 17");
      }));
      assertEquals("chunk 17", e.getMessage());
      for (int c = 0; c < 64; c++) assertEquals(1, runs.get(c), "chunk " + c);
    }
  }
}
