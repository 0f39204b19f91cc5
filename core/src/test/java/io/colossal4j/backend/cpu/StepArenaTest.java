package io.colossal4j.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.ops.Arith;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.MemoryCategory;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;
import org.junit.jupiter.api.Test;

/** The step arena: a repeated step reserves no new memory, and nothing allocated in a step survives it silently. */
class StepArenaTest {
  @Test void repeatedStepsReuseTheArena() {
    try (CpuBackend cpu = CpuBackend.create(1)) {
      Tensor w = Tensor.full(Shape.of(1024, 1024), DType.F32, cpu, 1);
      for (int step = 0; step < 3; step++) {
        try (var scope = cpu.openStep()) {
          Tensor h = w;
          for (int i = 0; i < 40; i++) h = Arith.mulScalar(h, 1.0);   // 40 × 4 MiB of activations: more than one chunk
          assertEquals(1.0, h.toDoubleArray()[12345]);
        }
        if (step == 0) reserved = cpu.stepArenaBytes();
        assertEquals(reserved, cpu.stepArenaBytes(), "step " + step + " reserved new memory");
      }
      assertTrue(reserved >= 40L * 4 * 1024 * 1024);
    }
  }

  private long reserved;

  @Test void activationsDoNotOutliveTheirStep() {
    try (CpuBackend cpu = CpuBackend.create(1)) {
      Tensor escaped;
      Tensor param;
      try (var scope = cpu.openStep()) {
        escaped = Tensor.full(Shape.of(4), DType.F32, cpu, 2);
        param = Tensor.empty(Shape.of(4), DType.F32, cpu, MemoryCategory.PARAMETER);
        cpu.kernels().fill(param, 3);
      }
      assertTrue(escaped.storage().isReleased());
      assertThrows(TensorException.class, escaped::toDoubleArray);
      assertFalse(param.storage().isReleased());
      assertEquals(3.0, param.toDoubleArray()[0]);
    }
  }

  @Test void otherThreadsAllocateOutsideTheStep() throws Exception {
    try (CpuBackend cpu = CpuBackend.create(1)) {
      Tensor[] fromOther = new Tensor[1];
      try (var scope = cpu.openStep()) {
        Thread t = new Thread(() -> fromOther[0] = Tensor.full(Shape.of(4), DType.F32, cpu, 5));
        t.start();
        t.join();
      }
      assertEquals(5.0, fromOther[0].toDoubleArray()[3]);
    }
  }
}
