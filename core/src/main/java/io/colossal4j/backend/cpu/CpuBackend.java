package io.colossal4j.backend.cpu;

import io.colossal4j.backend.Backend;
import io.colossal4j.backend.Kernels;
import io.colossal4j.backend.MemoryStats;
import io.colossal4j.backend.StepLedger;
import io.colossal4j.tensor.Device;
import io.colossal4j.tensor.Elements;
import io.colossal4j.tensor.MemoryCategory;
import io.colossal4j.tensor.Storage;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;
import java.lang.foreign.MemorySegment;
import java.util.function.Function;

/**
 * The CPU backend: a caching host allocator, a worker pool, and a kernel set. {@link #create(int)} gives the
 * fast kernels (Vector API, multithreaded); {@link #reference()} the scalar reference kernels that tests
 * use as the oracle. Both compute on the same kind of storage, so tensors can be compared directly.
 */
public final class CpuBackend implements Backend {
  private final String name;
  private final CpuParallel parallel;
  private final CpuAllocator allocator;
  private final Kernels kernels;
  private final StepArena stepArena = new StepArena();
  private volatile Thread stepOwner;
  private StepLedger ledger;

  private CpuBackend(String name, int threads, long capBytes, Function<CpuParallel, Kernels> kernelFactory) {
    this.name = name;
    this.parallel = new CpuParallel(threads);
    this.allocator = new CpuAllocator(4L << 30, capBytes);
    this.kernels = kernelFactory.apply(parallel);
  }

  /** Fast kernels on {@code threads} worker threads. */
  public static CpuBackend create(int threads) {
    return new CpuBackend("cpu-simd", threads, Long.MAX_VALUE, io.colossal4j.backend.cpu.simd.SimdKernels::new);
  }

  /** Fast kernels on as many threads as the machine has cores. */
  public static CpuBackend create() { return create(Runtime.getRuntime().availableProcessors()); }

  /**
   * A CPU backend computing with the kernels {@code kernels} builds on its worker pool: for tests that need a
   * kernel set the stock backends do not have (e.g. a stand-in for a device's fused kernel).
   */
  public static CpuBackend withKernels(String name, int threads, Function<CpuParallel, Kernels> kernels) {
    return new CpuBackend(name, threads, Long.MAX_VALUE, kernels);
  }

  /** The scalar reference kernels, single-threaded: slow and obviously right. */
  public static CpuBackend reference() {
    return new CpuBackend("cpu-scalar", 1, Long.MAX_VALUE, p -> new ScalarKernels());
  }

  @Override public Device device() { return Device.cpu(); }

  @Override public String name() { return name; }

  @Override public Kernels kernels() { return kernels; }

  public CpuParallel parallel() { return parallel; }

  @Override public Storage allocate(long bytes, MemoryCategory category) {
    if (stepOwner == Thread.currentThread() && (category == MemoryCategory.ACTIVATION || category == MemoryCategory.TEMPORARY)) {
      CpuStorage s = stepArena.allocate(this, bytes, category);
      ledger.add(s);
      return s;
    }
    CpuStorage s = allocator.allocate(this, bytes, category);
    if (stepOwner == Thread.currentThread()) ledger.observe(s);
    return s;
  }

  /**
   * Activations and temporaries of the opening thread come from the step arena until the scope closes. An
   * early release (see {@link Backend#openStep}) marks the storage released, lowers the arena's live bytes
   * (whose peak {@link #stepPeakBytes} reports) and hands its block to the step's next allocations that fit.
   */
  @Override public StepScope openStep() {
    if (stepOwner != null) return () -> {};
    ledger = new StepLedger();
    stepOwner = Thread.currentThread();
    return () -> {
      stepOwner = null;
      ledger.close();
      ledger = null;
      stepArena.reset();
    };
  }

  @Override public StepLedger activeStep() { return stepOwner == Thread.currentThread() ? ledger : null; }

  /** The most step-arena bytes live at once (allocated and not yet released) since the last {@link #resetStepPeak}. */
  public long stepPeakBytes() { return stepArena.peakBytes(); }

  public void resetStepPeak() { stepArena.resetPeak(); }

  /** Bytes the step arena holds (its high-water mark over all steps so far). */
  public long stepArenaBytes() { return stepArena.reservedBytes(); }

  /** Bytes the step arena handed out from blocks freed earlier in their step, over the backend's life. */
  public long stepArenaReusedBytes() { return stepArena.reusedBytes(); }

  /** Storages the step arena handed out over the backend's life (one per activation or temporary of a step). */
  public long stepArenaAllocations() { return stepArena.allocations(); }

  /**
   * Storages the caching allocator (everything outside the step arena) has handed out so far: {@code requests}, of
   * which {@code fromOs} needed new memory from the OS because no cached block of their size was free.
   */
  public record HostAllocations(long requests, long fromOs) {}

  public HostAllocations hostAllocations() {
    long[] c = allocator.counts();
    return new HostAllocations(c[0], c[1]);
  }

  @Override public MemoryStats memoryStats() { return allocator.stats(); }

  /** Frees the cached (unused) blocks. */
  public void emptyCache() { allocator.emptyCache(); }

  @Override public void copyFromHost(MemorySegment src, Tensor dst) {
    long bytes = dst.numel() * dst.dtype().byteSize();
    if (src.byteSize() < bytes)
      throw new TensorException("copyFromHost: source has " + src.byteSize() + " bytes, tensor " + dst.shape() + " " + dst.dtype() + " needs " + bytes);
    MemorySegment seg = segment(dst);
    if (dst.isContiguous()) {
      MemorySegment.copy(src, 0, seg, dst.offset() * dst.dtype().byteSize(), bytes);
      return;
    }
    int es = dst.dtype().byteSize();
    long[] i = {0};
    Strided.forEach(dst.shape(), dst.strides(), dst.offset(), off -> {
      Elements.set(seg, dst.dtype(), off * es, Elements.get(src, dst.dtype(), i[0]++ * es));
    });
  }

  @Override public void copyToHost(Tensor src, MemorySegment dst) {
    long bytes = src.numel() * src.dtype().byteSize();
    if (dst.byteSize() < bytes)
      throw new TensorException("copyToHost: destination has " + dst.byteSize() + " bytes, tensor " + src.shape() + " needs " + bytes);
    MemorySegment seg = segment(src);
    if (src.isContiguous()) {
      MemorySegment.copy(seg, src.offset() * src.dtype().byteSize(), dst, 0, bytes);
      return;
    }
    int es = src.dtype().byteSize();
    long[] i = {0};
    Strided.forEach(src.shape(), src.strides(), src.offset(), off -> {
      MemorySegment.copy(seg, off * es, dst, i[0]++ * es, es);
    });
  }

  /**
   * A storage of this backend over host memory that the caller owns (a mapped file shared between
   * processes): not pooled and not counted in {@link #memoryStats()}; {@code onRelease} runs once, on the
   * first {@link Storage#release()}, after which the storage refuses use. The caller keeps the memory valid
   * until then.
   */
  public CpuStorage external(MemorySegment memory, MemoryCategory category, Runnable onRelease) {
    return new CpuStorage(this, memory.byteSize(), category, memory, onRelease);
  }

  /** The host memory of a CPU tensor; rejects tensors of another device with a message naming it. */
  public static MemorySegment segment(Tensor t) {
    if (!(t.storage() instanceof CpuStorage cs))
      throw new TensorException("expected a CPU tensor, got one on " + t.device());
    return cs.segment();
  }

  @Override public void close() { parallel.close(); }

  @Override public String toString() { return name; }
}
