package io.colossal4j.testing;

import io.colossal4j.backend.BinaryOp;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.backend.cpu.ScalarKernels;
import io.colossal4j.tensor.Tensor;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A CPU backend whose kernels fuse the GELU backward with the bias gradient: the scalar reference kernels with
 * {@code fusedGeluBiasGrad} on (their reference {@code geluBackwardBiasGrad}), counting the fused calls. It runs the
 * fused branch of {@code LinAlg.linearGelu}, and the models' fused wiring, without a GPU.
 */
public final class FusedGeluBackend {
  private FusedGeluBackend() {}

  public static CpuBackend create(AtomicInteger calls) {
    return CpuBackend.withKernels("cpu-scalar+fused-gelu-bias", 1, p -> new ScalarKernels() {
      @Override public boolean fusedGeluBiasGrad() { return true; }

      @Override public boolean geluBackwardBiasGrad(BinaryOp op, Tensor x, Tensor gy, Tensor gx, Tensor gb) {
        calls.incrementAndGet();
        return super.geluBackwardBiasGrad(op, x, gy, gx, gb);
      }
    });
  }
}
