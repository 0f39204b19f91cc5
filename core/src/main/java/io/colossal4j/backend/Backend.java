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

  /**
   * A region (one training or evaluation step) that owns the activations and temporaries its thread allocates
   * (categories {@code ACTIVATION} and {@code TEMPORARY}), recorded in a {@link StepLedger}: they are
   * released deterministically, never by the garbage collector: early, when autograd drops the last hold on
   * one (a saved activation after the last backward rule that needs it, a gradient once consumed, a backward
   * rule's temporaries when it returns), and at the latest when the region closes. Such tensors must not be
   * used after that (their storage is marked released, so a use fails loudly). In particular a tensor saved
   * for backward inside a step is gone once the backward pass is done with it; the root of a backward pass
   * survives until the step ends. Parameters, gradients and optimizer state are unaffected. Regions do not
   * nest: an inner open is a no-op.
   */
  interface StepScope extends AutoCloseable {
    @Override void close();
  }

  default StepScope openStep() { return () -> {}; }

  /** The ledger of the step the calling thread has open on this backend, or null (no step, or another thread's). */
  default StepLedger activeStep() { return null; }

  /**
   * Values read back later: the elements of {@code tensors} (in order, each in row-major order), as they will be once
   * the work queued so far has run, as doubles. The CPU reads them at once; an accelerator queues a copy to host
   * memory and waits for it only when {@link HostValues#get} is first called, so a training step can queue the next
   * step's work before its figures are read. The tensors may be released right after this call.
   */
  default HostValues readLater(Tensor... tensors) {
    int n = 0;
    for (Tensor t : tensors) n += Math.toIntExact(t.numel());
    double[] v = new double[n];
    int at = 0;
    for (Tensor t : tensors) {
      double[] d = t.toDoubleArray();
      System.arraycopy(d, 0, v, at, d.length);
      at += d.length;
    }
    return () -> v;
  }

  /** Values copied back from a device, waited for on the first {@link #get}; later calls return the same array. */
  @FunctionalInterface
  interface HostValues {
    double[] get();
  }

  /**
   * Orders the work queued from now on after the work this backend queued beside its main stream (CUDA: the
   * weight-gradient GEMMs of linear layers, which run beside the input-gradient GEMMs and what follows them; see
   * {@link Kernels#linearWeightGrad}). Autograd calls it before a kernel reads a leaf's gradient (a sum into an
   * existing one, the gradient-ready hooks) and when a backward pass ends. Queues no wait when nothing is pending;
   * a no-op on backends with one stream.
   */
  default void joinSideWork() {}

  /** Waits until all work queued on this backend has finished (no-op on the CPU, whose kernels are synchronous). */
  default void synchronize() {}

  @Override default void close() {}
}
