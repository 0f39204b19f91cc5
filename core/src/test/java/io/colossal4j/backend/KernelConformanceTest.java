package io.colossal4j.backend;

import io.colossal4j.backend.cpu.CpuBackend;

/** The fast CPU kernels (Vector API, two worker threads so that the parallel paths run) against the reference. */
class KernelConformanceTest extends KernelConformance {
  @Override protected Backend createBackend() { return CpuBackend.create(2); }
}
