package io.colossal4j.backend;

import io.colossal4j.tensor.Device;
import io.colossal4j.tensor.MemoryCategory;
import io.colossal4j.tensor.Storage;
import io.colossal4j.tensor.Tensor;
import java.lang.foreign.MemorySegment;

/**
 * A device's compute engine: an allocator, a kernel set and host transfers. Ops never name a backend;
 * they dispatch to {@code tensor.backend()}, the one that allocated the tensor's storage. A backend is
 * created explicitly ({@code CpuBackend.create(threads)}, later {@code CudaBackend.open(device)}) and
 * passed to whatever creates tensors.
 */
public interface Backend extends AutoCloseable {
  Device device();

  /** A short name for messages and benchmarks ({@code cpu-simd}, {@code cpu-scalar}, {@code cuda:0}). */
  String name();

  Kernels kernels();

  /** Allocates {@code bytes} (uninitialised) charged to {@code category}; throws a report of what is held when out of memory. */
  Storage allocate(long bytes, MemoryCategory category);

  MemoryStats memoryStats();

  /** Copies a contiguous host buffer holding {@code dst.numel()} elements of {@code dst.dtype()} into {@code dst} (any strides). */
  void copyFromHost(MemorySegment src, Tensor dst);

  /** Copies {@code src} (any strides) into a contiguous host buffer in {@code src.dtype()}. */
  void copyToHost(Tensor src, MemorySegment dst);

  /** Waits until all work queued on this backend has finished (no-op on the CPU, whose kernels are synchronous). */
  default void synchronize() {}

  @Override default void close() {}
}
