package io.colossal4j.backend.cpu.simd;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.lang.management.ManagementFactory;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The row kernels (layer norm forward, softmax) allocate no heap memory per row once compiled: a lane sum that
 * copied the vector to an array, or a vector passed to a method the JIT did not inline, cost 80–180 bytes per
 * row (45 KB per call of 256 rows) and a collection every few thousand calls. On one thread (so the calling
 * thread does all the work and its allocation counter sees it), calls of 256 rows must come to allocate under
 * 2 KiB each (the call's own few objects; any per-row allocation is at least 16 bytes · 256 = 4 KiB). Interpreted
 * code allocates what the JIT later removes, so the test measures until the compiled code shows, for at most 20 s.
 */
class RowKernelAllocationTest {
  @Test void layerNormAndSoftmaxAllocateNothingPerRow() {
    for (int n : new int[] {1000, 1024}) check(256, n); // with and without a partial last vector: the JIT inlines differently
  }

  private static void check(int rows, int n) {
    Random rnd = new Random(2);
    float[] d = new float[rows * n];
    for (int i = 0; i < d.length; i++) d[i] = rnd.nextFloat();
    var threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
    long me = Thread.currentThread().threadId();
    try (CpuBackend cpu = CpuBackend.create(1)) {
      Tensor x = Tensor.of(d, Shape.of(rows, n), cpu), y = Tensor.empty(Shape.of(rows, n), DType.F32, cpu);
      Tensor w = Tensor.full(Shape.of(n), DType.F32, cpu, 1.5), b = Tensor.full(Shape.of(n), DType.F32, cpu, 0.5);
      Tensor mean = Tensor.empty(Shape.of(rows), DType.F32, cpu), rstd = Tensor.empty(Shape.of(rows), DType.F32, cpu);
      Runnable[] kernels = {() -> cpu.kernels().layerNorm(x, w, b, 1e-5, y, mean, rstd), () -> cpu.kernels().softmax(x, 1, false, y)};
      String[] names = {"layer norm", "softmax"};
      for (int k = 0; k < kernels.length; k++) {
        long deadline = System.nanoTime() + 20_000_000_000L;
        double perCall;
        do {
          long before = threads.getThreadAllocatedBytes(me);
          for (int i = 0; i < 200; i++) kernels[k].run();
          perCall = (threads.getThreadAllocatedBytes(me) - before) / 200.0;
        } while (perCall >= 2048 && System.nanoTime() < deadline);
        assertTrue(perCall < 2048, names[k] + " allocates " + perCall + " bytes per call of " + rows + " rows of " + n + ", want < 2048");
      }
    }
  }
}
