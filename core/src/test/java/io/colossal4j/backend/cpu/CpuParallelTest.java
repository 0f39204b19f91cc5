package io.colossal4j.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.concurrent.atomic.AtomicIntegerArray;
import org.junit.jupiter.api.Test;

/** {@link CpuParallel#forEachChunk}: every chunk exactly once, all done on return, failures rethrown. */
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
