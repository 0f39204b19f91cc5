package io.colossal4j.backend.cuda;

import io.colossal4j.backend.Backend;
import io.colossal4j.backend.Kernels;
import io.colossal4j.backend.MemoryStats;
import io.colossal4j.backend.StepLedger;
import io.colossal4j.backend.cuda.ffi.CublasLt;
import io.colossal4j.backend.cuda.ffi.CudaException;
import io.colossal4j.backend.cuda.ffi.CudaUnavailableException;
import io.colossal4j.backend.cuda.ffi.Driver;
import io.colossal4j.backend.cuda.ffi.LibraryLocator;
import io.colossal4j.backend.cuda.ffi.Nvrtc;
import io.colossal4j.tensor.Device;
import io.colossal4j.tensor.MemoryCategory;
import io.colossal4j.tensor.Storage;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.ref.Cleaner;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * One NVIDIA GPU: its primary context, one stream on which every kernel and copy of this backend is queued
 * (so work is ordered without events), the caching allocator, our NVRTC-compiled kernels and cuBLASLt.
 * Host transfers synchronise the stream; kernels do not.
 *
 * <p>Besides the main stream, a side stream runs jobs that nothing reads until a join: the weight-gradient GEMMs of
 * linear layers ({@link #sideBegin}), which fill the SMs the input-gradient GEMM's last wave leaves idle. Blocks
 * they use come back to the allocator tagged, and autograd joins before a leaf's gradient is read
 * ({@link #joinSideWork}).
 *
 * <p>{@link #open} fails with a {@link CudaUnavailableException} saying what was looked for and where when
 * there is no driver, no GPU, a too-old GPU or a missing library; it never falls back to the CPU.
 * Thread-safety: any thread may call in (the context is made current per thread); work from several threads
 * is serialised on the one stream in call order.
 */
public final class CudaBackend implements Backend {
  /** Oldest supported compute capability (bf16 tensor cores; tested on 9.0). */
  public static final int MIN_CC = 80;

  private final Device device;
  private final Arena libraries = Arena.ofShared();
  private final LibraryLocator locator;
  private final Driver driver;
  private final int cuDevice;
  private final long context;
  private final long stream;
  private final String deviceName;
  private final int ccMajor, ccMinor, multiprocessors;
  private final CachingAllocator allocator;
  private final CudaModule module;
  private final CudaKernels kernels;
  private final CudaOptions.CudnnPlans cudnnPlans;
  private final Cleaner cleaner = Cleaner.create();
  /**
   * The context this thread last made current, over all backends: a thread that works on two GPUs (a test
   * driving two ranks, a group closing another GPU's communicators) must switch back, so the cache cannot be
   * per backend.
   */
  private static final ThreadLocal<long[]> CURRENT = ThreadLocal.withInitial(() -> new long[1]);
  private CublasLt cublasLt;
  private io.colossal4j.backend.cuda.ffi.Cudnn cudnn;
  private volatile boolean closed;
  private volatile Thread stepOwner;
  /** Side-stream events, one per job number modulo this (a reused one makes a join wait a little longer, never less). */
  private static final int SIDE_EVENTS = 64;
  private final Object sideLock = new Object();
  private final int sidePriority;
  private long sideStream, sideReady;
  private final long[] sideEvents = new long[SIDE_EVENTS];
  /** The last side job queued, and the last one the main stream waits for. */
  private long sideJobs, joinedJobs;
  private volatile boolean sideWorkOn = true;
  private StepLedger ledger;

  private CudaBackend(Device device, CudaOptions options) {
    this.device = device;
    this.locator = new LibraryLocator(options.environment());
    this.cudnnPlans = options.cudnnPlans();
    try {
      this.driver = Driver.load(locator, libraries);
      this.cuDevice = driver.device(device.index());
      this.deviceName = driver.deviceName(cuDevice);
      this.ccMajor = driver.attribute(cuDevice, Driver.ATTR_CC_MAJOR);
      this.ccMinor = driver.attribute(cuDevice, Driver.ATTR_CC_MINOR);
      this.multiprocessors = driver.attribute(cuDevice, Driver.ATTR_MULTIPROCESSOR_COUNT);
      if (ccMajor * 10 + ccMinor < MIN_CC)
        throw new CudaUnavailableException(device + " (" + deviceName + ") has compute capability " + ccMajor + "." + ccMinor
            + "; colossal4j needs " + MIN_CC / 10 + "." + MIN_CC % 10 + " or newer (Ampere, Hopper)");
      this.context = driver.retainPrimaryContext(cuDevice);
      enter();
      // the main stream one priority above the least, where the device has two, so that its kernels (the step's
      // critical path) are dispatched before the side stream's when SMs free up
      int[] priorities = driver.streamPriorityRange();
      this.sidePriority = priorities[0];
      int mainPriority = priorities[1] < priorities[0] ? priorities[0] - 1 : priorities[0];
      this.stream = driver.streamCreateWithPriority(Driver.STREAM_NON_BLOCKING, mainPriority);
      // steps release their memory deterministically; a collection is only the last resort before an
      // out-of-memory error, for tensors made outside any step and dropped without release
      this.allocator = new CachingAllocator(new DriverMemory(), options.memoryCapBytes(), device + " (" + deviceName + ")", System::gc, this::awaitSide);
      Nvrtc nvrtc = Nvrtc.load(locator, libraries);
      this.module = CudaModule.load(driver, nvrtc, ccMajor, ccMinor, options.kernelCacheDir());
      this.kernels = new CudaKernels(this);
    } catch (RuntimeException e) {
      libraries.close();
      throw e;
    }
  }

  /** How many GPUs the driver sees (0 when it sees none); throws {@link CudaUnavailableException} when there is no driver. */
  public static int deviceCount(CudaOptions options) {
    try {
      // the global arena: the driver library stays loaded (unloading libcuda after cuInit is not safe)
      return Driver.load(new LibraryLocator(options.environment()), Arena.global()).deviceCount();
    } catch (CudaUnavailableException e) {
      if (e.getMessage().contains("found no GPU")) return 0;
      throw e;
    }
  }

  /**
   * Opens {@code device} (must be {@code cuda:N}). Throws {@link CudaUnavailableException} when CUDA cannot
   * be used here, naming what was looked for and where.
   */
  public static CudaBackend open(Device device, CudaOptions options) {
    if (device.kind() != Device.Kind.CUDA) throw new TensorException("CudaBackend.open needs a cuda:N device, got " + device);
    return new CudaBackend(device, options);
  }

  private final class DriverMemory implements DeviceMemory {
    @Override public long allocate(long bytes) { enter(); return driver.memAlloc(bytes); }

    @Override public void free(long pointer) { enter(); driver.memFree(pointer); }

    @Override public void synchronize() {
      joinSideWork();
      enter();
      driver.streamSynchronize(stream);
    }

    @Override public long totalBytes() { return driver.totalMemory(cuDevice); }
  }

  private volatile CudaProfiler profiler;

  /** The profiler collecting launches now, or null (the common case: launches then cost one volatile read). */
  CudaProfiler profiler() { return profiler; }

  /**
   * Starts recording every launch's GPU time, the GPU's idle time before it and the host time around it, per
   * (op label, kernel), until {@link #stopProfile}; profiled work runs a little slower on the host.
   */
  public void startProfile() {
    enter();
    CudaProfiler p = new CudaProfiler(driver, stream);
    p.start();
    profiler = p;
  }

  /** Stops the profile, waits for its work and returns the table of the {@code top} entries (see {@link CudaProfiler.Report#format}). */
  public String stopProfile(int top) {
    CudaProfiler p = profiler;
    if (p == null) throw new IllegalStateException("stopProfile on " + device + " without startProfile");
    profiler = null;
    enter();
    try {
      return p.finish().format(top);
    } finally {
      p.close();
    }
  }

  /** Makes this backend's context current on the calling thread (a no-op when it already is); libraries such as NCCL need it. */
  public void enter() {
    if (closed) throw new TensorException("the CUDA backend for " + device + " is closed");
    long[] current = CURRENT.get();
    if (current[0] != context) {
      driver.setCurrent(context);
      current[0] = context;
    }
  }

  /** The driver binding, for code that orders its own streams against this backend's (the NCCL process group). */
  public Driver driver() { return driver; }

  /** The stream every kernel and copy of this backend is queued on. */
  public long stream() { return stream; }

  /** Where this backend finds the CUDA libraries (NCCL is found the same way). */
  public LibraryLocator locator() { return locator; }

  /** The device address of {@code t}'s first element ({@code t.offset()} included); {@code t} must be on this backend. */
  public long address(Tensor t) { return pointer(t) + t.offset() * t.dtype().byteSize(); }

  CudaModule module() { return module; }

  /** How cuDNN execution plans are chosen on this backend (see {@link CudaOptions.CudnnPlans}). */
  CudaOptions.CudnnPlans cudnnPlans() { return cudnnPlans; }

  int multiprocessors() { return multiprocessors; }

  /** cuDNN, loaded on first use (its absence only matters to the fused attention, which then runs our own kernel). */
  synchronized io.colossal4j.backend.cuda.ffi.Cudnn cudnn() {
    if (cudnn == null) cudnn = io.colossal4j.backend.cuda.ffi.Cudnn.load(locator, libraries);
    return cudnn;
  }

  /** cuBLASLt, loaded on first use (its absence only matters to matmul). */
  synchronized CublasLt cublasLt() {
    if (cublasLt == null) cublasLt = CublasLt.load(locator, libraries);
    return cublasLt;
  }

  @Override public Device device() { return device; }

  @Override public String name() { return device.toString(); }

  /** "NVIDIA H200, compute capability 9.0, 132 SMs, driver 13000, kernels from cache ...". */
  public String describe() {
    return deviceName + ", compute capability " + ccMajor + "." + ccMinor + ", " + multiprocessors + " SMs, "
        + MemoryStats.human(driver.totalMemory(cuDevice)) + ", driver API " + driver.version() + ", kernels from " + module.origin();
  }

  @Override public Kernels kernels() { return kernels; }

  @Override public Storage allocate(long bytes, MemoryCategory category) {
    enter();
    CachingAllocator.Block block = allocator.allocate(bytes, category);
    AtomicBoolean returned = new AtomicBoolean();
    AtomicLong sideUse = new AtomicLong();
    Runnable giveBack = () -> {
      if (returned.compareAndSet(false, true)) allocator.release(block, category, sideUse.get());
    };
    CudaStorage s = new CudaStorage(this, bytes, category, block.pointer(), giveBack, sideUse);
    boolean inStep = stepOwner == Thread.currentThread();
    if (inStep && (category == MemoryCategory.ACTIVATION || category == MemoryCategory.TEMPORARY)) {
      ledger.add(s);  // the step releases it; no cleaner needed
    } else {
      cleaner.register(s, giveBack);
      if (inStep) ledger.observe(s);  // traced only (a gradient, optimizer state allocated during the step)
    }
    return s;
  }

  /**
   * A CUDA step: the activations and temporaries the opening thread allocates are owned by the step's
   * {@link StepLedger} and go back to the caching allocator when autograd drops their last hold, and all
   * remaining ones when the scope closes. Releases are stream-ordered (every kernel reading a block was
   * queued on this backend's one stream before the block was released, and whatever reuses it is queued
   * after), so closing a step neither synchronises nor waits for the GC.
   */
  @Override public StepScope openStep() {
    if (stepOwner != null) return () -> {};
    enter();
    ledger = new StepLedger();
    stepOwner = Thread.currentThread();
    return () -> {
      stepOwner = null;
      ledger.close();
      ledger = null;
    };
  }

  @Override public StepLedger activeStep() { return stepOwner == Thread.currentThread() ? ledger : null; }

  /**
   * A buffer that lives as long as the backend (cuBLASLt's workspace, the fault words), allocated even
   * inside a step without becoming step-owned. Released by its owner when the backend closes.
   */
  Tensor persistent(io.colossal4j.tensor.Shape shape, io.colossal4j.tensor.DType dtype) {
    Thread owner = stepOwner;
    boolean mine = owner == Thread.currentThread();
    if (mine) stepOwner = null;
    try {
      return Tensor.empty(shape, dtype, this, MemoryCategory.TEMPORARY);
    } finally {
      if (mine) stepOwner = owner;
    }
  }

  /** How many garbage collections the allocator has asked for (0 when every step released its memory itself). */
  public long collections() { return allocator.collections(); }

  /** Writes every GEMM the tuner times from now on, with each candidate algorithm's time, to {@code to} (null: stop). */
  public void logGemmTuning(java.io.PrintStream to) { ((CudaKernels) kernels()).gemms().logTuning(to); }

  /** How many times the host has waited for this device so far (synchronisations, host copies): a training step needs none. */
  public long hostWaits() { return driver.hostWaits(); }

  /** Whether linear + tanh GELU may run as one GEMM with the GELU in its epilogue (on by default; a benchmark switch). */
  public void useGeluEpilogue(boolean on) { ((CudaKernels) kernels()).gemms().geluEpilogue = on; }

  /** Starts or stops recording where the host waits for this device ({@link #hostWaitSites}); a diagnostic. */
  public void traceHostWaits(boolean on) { driver.traceWaits(on); }

  /** Where the host waited since tracing started: "count x caller < its caller < ...", most frequent first. */
  public java.util.List<String> hostWaitSites() { return driver.waitSites(); }

  /** cuMemAlloc and cuMemFree calls so far (a steady step, served from the cache, makes none). */
  public long deviceMemoryCalls() { return driver.memoryCalls(); }

  /** Blocks obtained from the driver so far (constant once steps reuse cached blocks). */
  long deviceAllocations() { return allocator.deviceAllocations(); }

  @Override public MemoryStats memoryStats() { return allocator.stats(); }

  /** Gives cached device blocks back to the driver. */
  public void emptyCache() { allocator.emptyCache(); }

  public void resetPeakMemory() { allocator.resetPeaks(); }

  /** The most device memory in use at once since the last {@link #resetPeakMemory} (PyTorch's max_memory_allocated). */
  public long peakMemoryInUse() { return allocator.peakInUse(); }

  /** The most bytes requested at once since the last reset, before the size classes' rounding (what PyTorch's max_memory_allocated counts, up to its 512-byte rounding). */
  public long peakMemoryRequested() { return allocator.peakRequested(); }

  /** The device address of element {@code t.offset()} of a tensor of this backend; validates ownership and liveness. */
  long pointer(Tensor t) {
    if (!(t.storage() instanceof CudaStorage cs) || t.backend() != this)
      throw new TensorException("expected a tensor on " + name() + ", got one on " + t.device() + " (" + t.backend().name() + ")");
    return cs.pointer();
  }

  @Override public void copyFromHost(MemorySegment src, Tensor dst) {
    long bytes = dst.numel() * dst.dtype().byteSize();
    if (src.byteSize() < bytes)
      throw new TensorException("copyFromHost: source has " + src.byteSize() + " bytes, tensor " + dst.shape() + " " + dst.dtype() + " needs " + bytes);
    if (bytes == 0) return;
    enter();
    try (Arena a = Arena.ofConfined()) {
      MemorySegment host = src.isNative() ? src : a.allocate(bytes, 16).copyFrom(src.asSlice(0, bytes));
      if (dst.isContiguous()) {
        driver.copyHostToDevice(pointer(dst) + dst.offset() * dst.dtype().byteSize(), host, bytes, stream);
      } else {
        Tensor tmp = Tensor.empty(dst.shape(), dst.dtype(), this, MemoryCategory.TEMPORARY);
        driver.copyHostToDevice(pointer(tmp), host, bytes, stream);
        kernels.copy(tmp, dst);
        tmp.storage().release();
      }
      driver.streamSynchronize(stream); // the host buffer may be reused as soon as we return
    }
  }

  @Override public void copyToHost(Tensor src, MemorySegment dst) {
    long bytes = src.numel() * src.dtype().byteSize();
    if (dst.byteSize() < bytes)
      throw new TensorException("copyToHost: destination has " + dst.byteSize() + " bytes, tensor " + src.shape() + " needs " + bytes);
    if (bytes == 0) return;
    enter();
    try (Arena a = Arena.ofConfined()) {
      MemorySegment host = dst.isNative() ? dst : a.allocate(bytes, 16);
      Tensor from = src;
      if (!src.isContiguous()) {
        from = Tensor.empty(src.shape(), src.dtype(), this, MemoryCategory.TEMPORARY);
        kernels.copy(src, from);
      }
      driver.copyDeviceToHost(host, pointer(from) + from.offset() * from.dtype().byteSize(), bytes, stream);
      driver.streamSynchronize(stream);
      kernels.faults().check();
      if (from != src) from.storage().release();
      if (host != dst) MemorySegment.copy(host, 0, dst, 0, bytes);
    }
  }

  /** Doubles per pinned read-back slot; a {@link #readLater} of more values gets a slot of its own size. */
  private static final int SLOT_VALUES = 64;

  /** A page-locked buffer and the event that marks its copy done, reused across read-backs. */
  private record Slot(MemorySegment host, long event) {}

  private final java.util.concurrent.ConcurrentLinkedDeque<Slot> freeSlots = new java.util.concurrent.ConcurrentLinkedDeque<>();
  private final java.util.List<Slot> allSlots = java.util.Collections.synchronizedList(new java.util.ArrayList<>());

  /**
   * Converts the values to f64 into a device buffer, queues its copy (and one of the device-fault words, when an
   * op armed them) to page-locked host memory and records an event; {@link HostValues#get} waits for that event
   * only, not for work queued after it (so not a full synchronisation), reports a recorded fault as
   * {@link #synchronize} would, and reads the values. Nothing waits here, so the caller can go on queueing work
   * (the next step) while the copy is pending.
   */
  @Override public HostValues readLater(Tensor... tensors) {
    int n = 0;
    for (Tensor t : tensors) {
      if (t.backend() != this) throw new TensorException("readLater: a tensor on " + t.device() + ", expected " + device);
      n += Math.toIntExact(t.numel());
    }
    if (n == 0) return () -> new double[0];
    enter();
    Tensor staged = Tensor.empty(io.colossal4j.tensor.Shape.of(n), io.colossal4j.tensor.DType.F64, this, MemoryCategory.TEMPORARY);
    int at = 0;
    for (Tensor t : tensors) {
      int k = Math.toIntExact(t.numel());
      if (k == 0) continue;
      Tensor flat = t.isContiguous() ? t.view(io.colossal4j.tensor.Shape.of(k), new long[] {1}, t.offset()) : contiguousCopy(t);
      kernels.copy(flat, staged.view(io.colossal4j.tensor.Shape.of(k), new long[] {1}, at));
      if (flat.storage() != t.storage()) flat.storage().release();
      at += k;
    }
    Slot slot = n <= SLOT_VALUES ? freeSlots.poll() : null;
    if (slot == null) {
      slot = new Slot(driver.hostAlloc(DeviceFaults.BYTES + 8L * Math.max(n, SLOT_VALUES)), driver.eventCreate(Driver.EVENT_DISABLE_TIMING));
      allSlots.add(slot);
    }
    // [fault words][values]: faults recorded up to here are read with the values, without waiting for later work
    boolean faultsCopied = kernels.faults().copyTo(slot.host());
    driver.copyDeviceToHost(slot.host().asSlice(DeviceFaults.BYTES), pointer(staged), 8L * n, stream);
    driver.eventRecord(slot.event(), stream);
    staged.storage().release();   // stream-ordered: whatever reuses the block is queued after the copy
    Slot mine = slot;
    int count = n;
    return new HostValues() {
      private double[] values;

      @Override public synchronized double[] get() {
        if (values == null) {
          driver.eventSynchronize(mine.event());
          try {
            if (faultsCopied) kernels.faults().checkCopied(mine.host());
            values = mine.host().asSlice(DeviceFaults.BYTES, 8L * count).toArray(java.lang.foreign.ValueLayout.JAVA_DOUBLE);
          } finally {
            freeSlots.push(mine);
          }
        }
        return values;
      }
    };
  }

  private Tensor contiguousCopy(Tensor t) {
    Tensor c = Tensor.empty(io.colossal4j.tensor.Shape.of(Math.toIntExact(t.numel())), t.dtype(), this, MemoryCategory.TEMPORARY);
    kernels.copy(t, c.view(t.shape(), t.shape().contiguousStrides(), 0));
    return c;
  }

  // ------------------------------------------------------------- the side stream

  /** Whether jobs may go to the side stream now: switched on (the default) and no profile running (it times the main stream). */
  boolean sideWorkOn() { return sideWorkOn && profiler == null; }

  /** Whether weight-gradient GEMMs may run on the side stream (on by default; a benchmark and test switch). */
  public void useSideStream(boolean on) {
    if (!on) joinSideWork();
    sideWorkOn = on;
  }

  /**
   * Starts a side job: returns the side stream, ordered after everything queued on the main stream so far. The
   * caller queues the job on it, then calls {@link #sideEnd} and tags every block the job reads or writes with the
   * number that returns ({@link CudaStorage#markSideUse}).
   */
  long sideBegin() {
    synchronized (sideLock) {
      enter();
      if (sideStream == 0) {
        sideStream = driver.streamCreateWithPriority(Driver.STREAM_NON_BLOCKING, sidePriority);
        sideReady = driver.eventCreate(Driver.EVENT_DISABLE_TIMING);
        for (int i = 0; i < SIDE_EVENTS; i++) sideEvents[i] = driver.eventCreate(Driver.EVENT_DISABLE_TIMING);
      }
      driver.eventRecord(sideReady, stream);
      driver.streamWaitEvent(sideStream, sideReady);
      return sideStream;
    }
  }

  /** Ends the side job queued since {@link #sideBegin}; returns its number (jobs run in that order). */
  long sideEnd() {
    synchronized (sideLock) {
      long job = ++sideJobs;
      driver.eventRecord(sideEvents[(int) (job % SIDE_EVENTS)], sideStream);
      return job;
    }
  }

  /** Work queued on the main stream from now on waits for side job {@code job} and all before it. */
  void awaitSide(long job) {
    synchronized (sideLock) {
      if (job <= joinedJobs) return;
      enter();
      driver.streamWaitEvent(stream, sideEvents[(int) (job % SIDE_EVENTS)]);
      joinedJobs = job;
    }
  }

  @Override public void joinSideWork() {
    long last;
    synchronized (sideLock) { last = sideJobs; }
    awaitSide(last);
  }

  /** Side jobs queued so far (tests check that the side path ran). */
  long sideJobs() { synchronized (sideLock) { return sideJobs; } }

  /** Waits for all queued work; a kernel fault surfaces here as a {@link CudaException}. */
  @Override public void synchronize() {
    joinSideWork();
    enter();
    driver.streamSynchronize(stream);
    kernels.faults().check();
  }

  @Override public synchronized void close() {
    if (closed) return;
    try {
      synchronize();
      allocator.emptyCache();
      for (Slot sl : allSlots) {
        driver.hostFree(sl.host());
        driver.eventDestroy(sl.event());
      }
      kernels.close();
      module.close();
      if (sideStream != 0) {
        driver.streamDestroy(sideStream);
        driver.eventDestroy(sideReady);
        for (long e : sideEvents) driver.eventDestroy(e);
      }
      driver.streamDestroy(stream);
      driver.releasePrimaryContext(cuDevice);
    } catch (CudaException e) {
      throw new CudaException("closing " + name() + ": " + e.getMessage(), e.status());
    } finally {
      closed = true;
    }
  }

  @Override public String toString() { return name(); }
}
