package io.colossal4j.backend.cpu.simd;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.backend.BinaryOp;
import io.colossal4j.backend.UnaryOp;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.lang.management.ManagementFactory;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * GELU and its derivative run as one loop each ({@link ActivationRows}); that loop is near the JIT's node budget,
 * and a vector helper call the JIT leaves out of line boxes every vector it passes (64+ bytes per 16 elements,
 * about 4 MB per call here, and 20-50x slower). Once compiled, a call over 2^18 + 5 elements on one thread (so
 * the calling thread's allocation counter sees all the work) must allocate under 4 KiB: the call's own few
 * objects, where boxing would be at least 16 bytes per vector, 256 KiB. Interpreted code allocates what the JIT
 * later removes, so the test measures until compiled code shows, for at most 20 s.
 */
class GeluAllocationTest {
  @Test void geluAndItsDerivativeDoNotBoxVectors() {
    int n = (1 << 18) + 5;
    Random rnd = new Random(3);
    float[] d = new float[n];
    for (int i = 0; i < n; i++) d[i] = (float) rnd.nextGaussian() * 3;
    var threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
    long me = Thread.currentThread().threadId();
    try (CpuBackend cpu = CpuBackend.create(1)) {
      Tensor x = Tensor.of(d, Shape.of(n), cpu), g = Tensor.of(d, Shape.of(n), cpu), y = Tensor.empty(Shape.of(n), DType.F32, cpu);
      Runnable[] kernels = {() -> cpu.kernels().unary(UnaryOp.GELU, x, y), () -> cpu.kernels().binary(BinaryOp.GELU_BACKWARD, x, g, y)};
      String[] names = {"gelu", "gelu backward"};
      for (int k = 0; k < kernels.length; k++) {
        long deadline = System.nanoTime() + 20_000_000_000L;
        double perCall;
        do {
          long before = threads.getThreadAllocatedBytes(me);
          for (int i = 0; i < 20; i++) kernels[k].run();
          perCall = (threads.getThreadAllocatedBytes(me) - before) / 20.0;
        } while (perCall >= 4096 && System.nanoTime() < deadline);
        assertTrue(perCall < 4096, names[k] + " allocates " + perCall + " bytes per call of " + n + " elements, want < 4096");
      }
    }
  }
}
