package io.colossal4j.backend.cuda;

import io.colossal4j.backend.Backend;
import io.colossal4j.backend.KernelConformance;
import io.colossal4j.backend.cuda.ffi.CudaUnavailableException;
import io.colossal4j.tensor.Device;
import java.nio.file.Path;
import org.junit.jupiter.api.Assumptions;

/**
 * The project's backend conformance suite ({@link KernelConformance}: every kernel against the scalar CPU
 * reference, poisoned outputs, strided views, the suite's stated tolerances) run on cuda:0. Skips, saying
 * why, where no GPU can be used.
 */
class CudaSharedConformanceTest extends KernelConformance {
  @Override protected Backend createBackend() {
    CudaOptions opts = CudaOptions.defaults(System.getenv());
    String cache = System.getProperty("c4j.kernelCache");
    if (cache != null) opts = opts.withKernelCacheDir(Path.of(cache));
    try {
      return CudaBackend.open(Device.cuda(0), opts);
    } catch (CudaUnavailableException e) {
      Assumptions.abort("no usable CUDA GPU, skipping: " + e.getMessage().lines().findFirst().orElse(""));
      throw e;
    }
  }
}
