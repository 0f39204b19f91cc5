package io.colossal4j.backend.cpu.simd;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.colossal4j.backend.cpu.CpuParallel;
import java.util.concurrent.atomic.AtomicIntegerArray;
import org.junit.jupiter.api.Test;

/** {@link RowOps#forChunksOfRows}: every row exactly once, in the fixed chunks, whatever the thread count. */
class RowChunksTest {
  @Test void everyRowOnceInItsChunkOnAnyThreadCount() {
    long[][] cases = {{0, 4}, {1, 4}, {3, 4}, {4, 4}, {5, 4}, {37, 4}, {256, 16}, {4096, 16}, {1001, 7}};
    for (int threads : new int[] {1, 2, 3, 5})
      try (CpuParallel par = new CpuParallel(threads)) {
        for (long[] c : cases) {
          int rows = (int) c[0];
          long chunk = c[1];
          AtomicIntegerArray seen = new AtomicIntegerArray(rows);
          AtomicIntegerArray badRange = new AtomicIntegerArray(1);
          RowOps.forChunksOfRows(par, rows, chunk, (r0, r1) -> {
            if (r0 % chunk != 0 || r1 != Math.min(rows, r0 + chunk)) badRange.incrementAndGet(0);
            for (long r = r0; r < r1; r++) seen.incrementAndGet((int) r);
          });
          String what = rows + " rows in chunks of " + chunk + " on " + threads + " threads";
          assertEquals(0, badRange.get(0), what + ": a range that is not one whole chunk");
          for (int r = 0; r < rows; r++) assertEquals(1, seen.get(r), what + ": row " + r + " visits");
        }
      }
  }
}
