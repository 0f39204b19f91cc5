package io.colossal4j.testing;

import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.backend.cpu.ScalarKernels;
import io.colossal4j.tensor.Tensor;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A CPU backend whose kernels fuse the linear-residual GEMM: the scalar reference kernels with
 * {@code fusedLinearResidual} on (their reference {@code matmulResidual}, which rounds once), counting the fused
 * calls. It runs the fused branch of {@code LinAlg.linearAdd}, and the models' fused wiring, without a GPU.
 */
public final class FusedResidualBackend {
  private FusedResidualBackend() {}

  public static CpuBackend create(AtomicInteger calls) {
    return CpuBackend.withKernels("cpu-scalar+fused-residual", 1, p -> new ScalarKernels() {
      @Override public boolean fusedLinearResidual() { return true; }

      @Override public boolean matmulResidual(Tensor a, Tensor b, Tensor bias, Tensor residual, Tensor out) {
        calls.incrementAndGet();
        return super.matmulResidual(a, b, bias, residual, out);
      }
    });
  }
}
