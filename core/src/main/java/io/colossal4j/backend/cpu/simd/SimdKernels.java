package io.colossal4j.backend.cpu.simd;

import io.colossal4j.backend.cpu.CpuParallel;
import io.colossal4j.backend.cpu.ScalarKernels;

/**
 * The fast CPU kernels: Java Vector API loops, width-generic with a scalar tail, multithreaded on the
 * backend's pool. Anything not specialised here (other dtypes, unusual strides) falls through to the
 * reference implementation it extends, which is the same math.
 */
public class SimdKernels extends ScalarKernels {
  protected final CpuParallel parallel;

  public SimdKernels(CpuParallel parallel) {
    this.parallel = parallel;
  }
}
