package io.colossal4j.backend.cuda.ffi;

import static io.colossal4j.backend.cuda.ffi.Binder.I;
import static io.colossal4j.backend.cuda.ffi.Binder.J;
import static io.colossal4j.backend.cuda.ffi.Binder.P;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * The CUDA driver API (libcuda.so.1): devices, the primary context, streams, events, device and pinned
 * host memory, modules and kernel launches. Every status is checked and turned into a {@link CudaException}
 * carrying cuGetErrorName/cuGetErrorString. Sizes and pointers are validated before each call, so bad
 * input from Java is an exception, never a fault inside the driver.
 *
 * <p>Thread-safety: the driver is thread-safe; calls that act on "the current context" need
 * {@link #setCurrent} on the calling thread first (the backend does this).
 */
public final class Driver {
  public static final int CUDA_ERROR_OUT_OF_MEMORY = 2;
  public static final int CUDA_ERROR_NO_DEVICE = 100;
  public static final int ATTR_MAX_THREADS_PER_BLOCK = 1, ATTR_MULTIPROCESSOR_COUNT = 16, ATTR_L2_CACHE_SIZE = 38;
  public static final int ATTR_CC_MAJOR = 75, ATTR_CC_MINOR = 76, ATTR_MAX_SHARED_PER_BLOCK_OPTIN = 97;
  public static final int STREAM_NON_BLOCKING = 1;
  public static final int EVENT_DISABLE_TIMING = 2;
  private static final int CUDA_ERROR_NOT_READY = 600;
  private static final int FUNC_ATTR_MAX_DYNAMIC_SHARED = 8;
  /** CUfunction_attribute values read by {@link #functionAttribute}. */
  public static final int FUNC_ATTR_NUM_REGS = 4, FUNC_ATTR_LOCAL_SIZE_BYTES = 3;

  private final MethodHandle cuInit, cuDriverGetVersion, cuDeviceGetCount, cuDeviceGet, cuDeviceGetName, cuDeviceGetAttribute,
      cuDeviceTotalMem, cuDevicePrimaryCtxRetain, cuDevicePrimaryCtxRelease, cuCtxSetCurrent, cuCtxSynchronize,
      cuStreamCreate, cuStreamCreateWithPriority, cuCtxGetStreamPriorityRange, cuStreamDestroy, cuStreamSynchronize, cuEventCreate, cuEventRecord, cuEventSynchronize,
      cuEventElapsedTime, cuEventDestroy, cuEventQuery, cuStreamWaitEvent, cuMemAlloc, cuMemFree, cuMemGetInfo, cuMemcpyHtoDAsync, cuMemcpyDtoHAsync,
      cuMemcpyDtoDAsync, cuMemsetD8Async, cuMemHostAlloc, cuMemFreeHost, cuModuleLoadData, cuModuleUnload,
      cuModuleGetFunction, cuFuncSetAttribute, cuFuncGetAttribute, cuLaunchKernel, cuGetErrorString, cuGetErrorName;

  private Driver(Binder b) {
    cuInit = b.status("cuInit", I);
    cuDriverGetVersion = b.status("cuDriverGetVersion", P);
    cuDeviceGetCount = b.status("cuDeviceGetCount", P);
    cuDeviceGet = b.status("cuDeviceGet", P, I);
    cuDeviceGetName = b.status("cuDeviceGetName", P, I, I);
    cuDeviceGetAttribute = b.status("cuDeviceGetAttribute", P, I, I);
    cuDeviceTotalMem = b.status("cuDeviceTotalMem_v2", P, I);
    cuDevicePrimaryCtxRetain = b.status("cuDevicePrimaryCtxRetain", P, I);
    cuDevicePrimaryCtxRelease = b.status("cuDevicePrimaryCtxRelease_v2", I);
    cuCtxSetCurrent = b.status("cuCtxSetCurrent", J);
    cuCtxSynchronize = b.status("cuCtxSynchronize");
    cuStreamCreate = b.status("cuStreamCreate", P, I);
    cuStreamCreateWithPriority = b.status("cuStreamCreateWithPriority", P, I, I);
    cuCtxGetStreamPriorityRange = b.status("cuCtxGetStreamPriorityRange", P, P);
    cuStreamDestroy = b.status("cuStreamDestroy_v2", J);
    cuStreamSynchronize = b.status("cuStreamSynchronize", J);
    cuEventCreate = b.status("cuEventCreate", P, I);
    cuEventRecord = b.status("cuEventRecord", J, J);
    cuEventSynchronize = b.status("cuEventSynchronize", J);
    cuEventElapsedTime = b.status(b.has("cuEventElapsedTime_v2") ? "cuEventElapsedTime_v2" : "cuEventElapsedTime", P, J, J);
    cuEventDestroy = b.status("cuEventDestroy_v2", J);
    cuEventQuery = b.status("cuEventQuery", J);
    cuStreamWaitEvent = b.status("cuStreamWaitEvent", J, J, I);
    cuMemAlloc = b.status("cuMemAlloc_v2", P, J);
    cuMemFree = b.status("cuMemFree_v2", J);
    cuMemGetInfo = b.status("cuMemGetInfo_v2", P, P);
    cuMemcpyHtoDAsync = b.status("cuMemcpyHtoDAsync_v2", J, P, J, J);
    cuMemcpyDtoHAsync = b.status("cuMemcpyDtoHAsync_v2", P, J, J, J);
    cuMemcpyDtoDAsync = b.status("cuMemcpyDtoDAsync_v2", J, J, J, J);
    cuMemsetD8Async = b.status("cuMemsetD8Async", J, ValueLayout.JAVA_BYTE, J, J);
    cuMemHostAlloc = b.status("cuMemHostAlloc", P, J, I);
    cuMemFreeHost = b.status("cuMemFreeHost", P);
    cuModuleLoadData = b.status("cuModuleLoadData", P, P);
    cuModuleUnload = b.status("cuModuleUnload", J);
    cuModuleGetFunction = b.status("cuModuleGetFunction", P, J, P);
    cuFuncSetAttribute = b.status("cuFuncSetAttribute", J, I, I);
    cuFuncGetAttribute = b.status("cuFuncGetAttribute", P, I, J);
    cuLaunchKernel = b.status("cuLaunchKernel", J, I, I, I, I, I, I, I, J, P, P);
    cuGetErrorString = b.status("cuGetErrorString", I, P);
    cuGetErrorName = b.status("cuGetErrorName", I, P);
  }

  /** Opens libcuda through {@code locator} (into {@code arena}, which must outlive the driver) and runs cuInit. */
  public static Driver load(LibraryLocator locator, Arena arena) {
    Driver d = new Driver(new Binder(locator.open(LibraryLocator.DRIVER, arena), "libcuda"));
    int st = d.call(() -> (int) d.cuInit.invokeExact(0));
    if (st == CUDA_ERROR_NO_DEVICE)
      throw new CudaUnavailableException("the CUDA driver loaded but found no GPU (cuInit: " + d.describe(st) + "); check nvidia-smi and CUDA_VISIBLE_DEVICES");
    d.check(st, "cuInit");
    return d;
  }

  // ------------------------------------------------------------------ errors

  @FunctionalInterface private interface Call { int run() throws Throwable; }

  private int call(Call c) {
    try {
      return c.run();
    } catch (Throwable t) {
      throw Binder.rethrow(t);
    }
  }

  /** "CUDA_ERROR_OUT_OF_MEMORY (2): out of memory". */
  public String describe(int status) {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment p = a.allocate(P);
      String name = call(() -> (int) cuGetErrorName.invokeExact(status, p)) == 0 ? Binder.cString(p.get(P, 0)) : "CUDA error";
      String text = call(() -> (int) cuGetErrorString.invokeExact(status, p)) == 0 ? Binder.cString(p.get(P, 0)) : "unknown status";
      return name + " (" + status + "): " + text;
    }
  }

  void check(int status, String fn) {
    if (status != 0) throw new CudaException("libcuda " + fn + " failed: " + describe(status), status);
  }

  private static void requireNonNull(long ptr, String what) {
    if (ptr == 0) throw new CudaException(what + " is a null pointer");
  }

  private static void requireBytes(long bytes, String what) {
    if (bytes < 0) throw new CudaException(what + ": negative byte count " + bytes);
  }

  // ------------------------------------------------------------------ devices and context

  public int version() {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment v = a.allocate(I);
      check(call(() -> (int) cuDriverGetVersion.invokeExact(v)), "cuDriverGetVersion");
      return v.get(I, 0);
    }
  }

  public int deviceCount() {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment v = a.allocate(I);
      check(call(() -> (int) cuDeviceGetCount.invokeExact(v)), "cuDeviceGetCount");
      return v.get(I, 0);
    }
  }

  public int device(int ordinal) {
    int count = deviceCount();
    if (ordinal < 0 || ordinal >= count)
      throw new CudaUnavailableException("cuda:" + ordinal + " requested but the driver sees " + count + " GPU(s) (valid: cuda:0..cuda:" + (count - 1) + ")");
    try (Arena a = Arena.ofConfined()) {
      MemorySegment v = a.allocate(I);
      check(call(() -> (int) cuDeviceGet.invokeExact(v, ordinal)), "cuDeviceGet");
      return v.get(I, 0);
    }
  }

  public String deviceName(int dev) {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment buf = a.allocate(256);
      check(call(() -> (int) cuDeviceGetName.invokeExact(buf, 256, dev)), "cuDeviceGetName");
      return buf.getString(0);
    }
  }

  public int attribute(int dev, int attribute) {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment v = a.allocate(I);
      check(call(() -> (int) cuDeviceGetAttribute.invokeExact(v, attribute, dev)), "cuDeviceGetAttribute(" + attribute + ")");
      return v.get(I, 0);
    }
  }

  public long totalMemory(int dev) {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment v = a.allocate(J);
      check(call(() -> (int) cuDeviceTotalMem.invokeExact(v, dev)), "cuDeviceTotalMem");
      return v.get(J, 0);
    }
  }

  /** Retains the device's primary context (the one the runtime API and PyTorch share). */
  public long retainPrimaryContext(int dev) {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment v = a.allocate(J);
      check(call(() -> (int) cuDevicePrimaryCtxRetain.invokeExact(v, dev)), "cuDevicePrimaryCtxRetain");
      return v.get(J, 0);
    }
  }

  public void releasePrimaryContext(int dev) { check(call(() -> (int) cuDevicePrimaryCtxRelease.invokeExact(dev)), "cuDevicePrimaryCtxRelease"); }

  public void setCurrent(long ctx) {
    requireNonNull(ctx, "context");
    check(call(() -> (int) cuCtxSetCurrent.invokeExact(ctx)), "cuCtxSetCurrent");
  }

  public void contextSynchronize() {
    waited();
    check(call(() -> (int) cuCtxSynchronize.invokeExact()), "cuCtxSynchronize");
  }

  private final java.util.concurrent.atomic.LongAdder hostWaits = new java.util.concurrent.atomic.LongAdder(), memoryCalls = new java.util.concurrent.atomic.LongAdder();

  /** How many times the host has waited for the device so far (context, stream and event synchronisations). */
  public long hostWaits() { return hostWaits.sum(); }

  /** Where the host waited, by calling method (outside this package and the backend's), while tracing is on; null when off. */
  private volatile java.util.concurrent.ConcurrentHashMap<String, java.util.concurrent.atomic.LongAdder> waitSites;

  /** Starts (true) or stops recording where the host waits for the device (a diagnostic; costs a stack walk per wait). */
  public void traceWaits(boolean on) { waitSites = on ? new java.util.concurrent.ConcurrentHashMap<>() : null; }

  /** The recorded wait sites and their counts, most frequent first. */
  public java.util.List<String> waitSites() {
    var m = waitSites;
    if (m == null) return java.util.List.of();
    return m.entrySet().stream().sorted((a, b) -> Long.compare(b.getValue().sum(), a.getValue().sum()))
        .map(e -> e.getValue().sum() + " x " + e.getKey()).toList();
  }

  private void waited() {
    hostWaits.increment();
    var m = waitSites;
    if (m == null) return;
    String site = StackWalker.getInstance().walk(frames -> frames
        .filter(f -> !f.getClassName().startsWith("io.colossal4j.backend.cuda") && !f.getClassName().startsWith("io.colossal4j.tensor.Tensor"))
        .limit(3).map(f -> f.getClassName().substring(f.getClassName().lastIndexOf('.') + 1) + "." + f.getMethodName() + ":" + f.getLineNumber())
        .reduce((a, b) -> a + " < " + b).orElse("?"));
    m.computeIfAbsent(site, k -> new java.util.concurrent.atomic.LongAdder()).increment();
  }

  /** How many cuMemAlloc and cuMemFree calls so far (cuMemFree synchronises the device). */
  public long memoryCalls() { return memoryCalls.sum(); }

  /** [free, total] bytes of the current context's device. */
  public long[] memoryInfo() {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment f = a.allocate(J), t = a.allocate(J);
      check(call(() -> (int) cuMemGetInfo.invokeExact(f, t)), "cuMemGetInfo");
      return new long[] {f.get(J, 0), t.get(J, 0)};
    }
  }

  // ------------------------------------------------------------------ streams and events

  public long streamCreate(int flags) {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment v = a.allocate(J);
      check(call(() -> (int) cuStreamCreate.invokeExact(v, flags)), "cuStreamCreate");
      return v.get(J, 0);
    }
  }

  /**
   * A stream whose kernels the scheduler prefers over those of lower-priority streams when SMs free up
   * ({@code highest}: the context's greatest priority; otherwise the default priority).
   */
  public long streamCreate(int flags, boolean highest) {
    return highest ? streamCreateWithPriority(flags, streamPriorityRange()[1]) : streamCreate(flags);
  }

  /** The context's stream priorities {least, greatest}; a greater priority is a smaller number (e.g. {0, -5}). */
  public int[] streamPriorityRange() {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment least = a.allocate(I), greatest = a.allocate(I);
      check(call(() -> (int) cuCtxGetStreamPriorityRange.invokeExact(least, greatest)), "cuCtxGetStreamPriorityRange");
      return new int[] {least.get(I, 0), greatest.get(I, 0)};
    }
  }

  /** A stream of the given priority (within {@link #streamPriorityRange}). */
  public long streamCreateWithPriority(int flags, int priority) {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment v = a.allocate(J);
      check(call(() -> (int) cuStreamCreateWithPriority.invokeExact(v, flags, priority)), "cuStreamCreateWithPriority");
      return v.get(J, 0);
    }
  }

  public void streamDestroy(long stream) {
    requireNonNull(stream, "stream");
    check(call(() -> (int) cuStreamDestroy.invokeExact(stream)), "cuStreamDestroy");
  }

  /** Waits for the stream; a kernel fault queued earlier surfaces here, with the driver's description. */
  public void streamSynchronize(long stream) {
    waited();
    check(call(() -> (int) cuStreamSynchronize.invokeExact(stream)), "cuStreamSynchronize");
  }

  public long eventCreate() { return eventCreate(0); }

  /** An event with cuEventCreate flags ({@link #EVENT_DISABLE_TIMING} makes record and wait cheaper). */
  public long eventCreate(int flags) {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment v = a.allocate(J);
      check(call(() -> (int) cuEventCreate.invokeExact(v, flags)), "cuEventCreate");
      return v.get(J, 0);
    }
  }

  /** Whether every piece of work captured by the event's last record has finished (never blocks). */
  public boolean eventDone(long event) {
    requireNonNull(event, "event");
    int st = call(() -> (int) cuEventQuery.invokeExact(event));
    if (st == CUDA_ERROR_NOT_READY) return false;
    check(st, "cuEventQuery");
    return true;
  }

  /** Work queued on {@code stream} after this call waits for the event's last record (the host does not wait). */
  public void streamWaitEvent(long stream, long event) {
    requireNonNull(event, "event");
    check(call(() -> (int) cuStreamWaitEvent.invokeExact(stream, event, 0)), "cuStreamWaitEvent");
  }

  public void eventRecord(long event, long stream) {
    requireNonNull(event, "event");
    check(call(() -> (int) cuEventRecord.invokeExact(event, stream)), "cuEventRecord");
  }

  public void eventSynchronize(long event) {
    requireNonNull(event, "event");
    waited();
    check(call(() -> (int) cuEventSynchronize.invokeExact(event)), "cuEventSynchronize");
  }

  /** Milliseconds between two recorded, completed events. */
  public float elapsedMillis(long start, long end) {
    requireNonNull(start, "start event");
    requireNonNull(end, "end event");
    try (Arena a = Arena.ofConfined()) {
      MemorySegment v = a.allocate(Binder.F);
      check(call(() -> (int) cuEventElapsedTime.invokeExact(v, start, end)), "cuEventElapsedTime");
      return v.get(Binder.F, 0);
    }
  }

  public void eventDestroy(long event) {
    requireNonNull(event, "event");
    check(call(() -> (int) cuEventDestroy.invokeExact(event)), "cuEventDestroy");
  }

  // ------------------------------------------------------------------ memory

  /** Device memory of {@code bytes} (> 0); returns 0 when the device is out of memory, throws on any other failure. */
  public long memAlloc(long bytes) {
    if (bytes <= 0) throw new CudaException("cuMemAlloc: byte count must be > 0, got " + bytes);
    try (Arena a = Arena.ofConfined()) {
      MemorySegment v = a.allocate(J);
      memoryCalls.increment();
      int st = call(() -> (int) cuMemAlloc.invokeExact(v, bytes));
      if (st == CUDA_ERROR_OUT_OF_MEMORY) return 0;
      check(st, "cuMemAlloc(" + bytes + ")");
      return v.get(J, 0);
    }
  }

  public void memFree(long ptr) {
    requireNonNull(ptr, "cuMemFree pointer");
    memoryCalls.increment();
    check(call(() -> (int) cuMemFree.invokeExact(ptr)), "cuMemFree");
  }

  /** Copies {@code bytes} from native host memory {@code src} to device address {@code dst}, ordered on {@code stream}. */
  public void copyHostToDevice(long dst, MemorySegment src, long bytes, long stream) {
    requireNonNull(dst, "copy destination");
    checkHost(src, bytes, "copy source");
    if (bytes == 0) return;
    check(call(() -> (int) cuMemcpyHtoDAsync.invokeExact(dst, src, bytes, stream)), "cuMemcpyHtoDAsync");
  }

  public void copyDeviceToHost(MemorySegment dst, long src, long bytes, long stream) {
    requireNonNull(src, "copy source");
    checkHost(dst, bytes, "copy destination");
    if (bytes == 0) return;
    check(call(() -> (int) cuMemcpyDtoHAsync.invokeExact(dst, src, bytes, stream)), "cuMemcpyDtoHAsync");
  }

  public void copyDeviceToDevice(long dst, long src, long bytes, long stream) {
    requireNonNull(dst, "copy destination");
    requireNonNull(src, "copy source");
    requireBytes(bytes, "cuMemcpyDtoDAsync");
    if (bytes == 0) return;
    check(call(() -> (int) cuMemcpyDtoDAsync.invokeExact(dst, src, bytes, stream)), "cuMemcpyDtoDAsync");
  }

  public void memsetBytes(long dst, byte value, long count, long stream) {
    requireNonNull(dst, "memset destination");
    requireBytes(count, "cuMemsetD8Async");
    if (count == 0) return;
    check(call(() -> (int) cuMemsetD8Async.invokeExact(dst, value, count, stream)), "cuMemsetD8Async");
  }

  private static void checkHost(MemorySegment s, long bytes, String what) {
    requireBytes(bytes, what);
    if (!s.isNative()) throw new CudaException(what + " must be native memory (a heap array cannot be handed to the driver)");
    if (s.byteSize() < bytes) throw new CudaException(what + " has " + s.byteSize() + " bytes, " + bytes + " needed");
  }

  /** Page-locked host memory of {@code bytes}, readable by the GPU's copy engines; free with {@link #hostFree}. */
  public MemorySegment hostAlloc(long bytes) {
    if (bytes <= 0) throw new CudaException("cuMemHostAlloc: byte count must be > 0, got " + bytes);
    try (Arena a = Arena.ofConfined()) {
      MemorySegment v = a.allocate(P);
      check(call(() -> (int) cuMemHostAlloc.invokeExact(v, bytes, 0)), "cuMemHostAlloc(" + bytes + ")");
      return v.get(P, 0).reinterpret(bytes);
    }
  }

  public void hostFree(MemorySegment pinned) {
    if (pinned.address() == 0) throw new CudaException("cuMemFreeHost: null pointer");
    check(call(() -> (int) cuMemFreeHost.invokeExact(pinned)), "cuMemFreeHost");
  }

  // ------------------------------------------------------------------ modules and launches

  /** Loads a cubin or PTX image (native memory, NUL-terminated for PTX) into the current context. */
  public long moduleLoad(MemorySegment image) {
    if (!image.isNative() || image.byteSize() == 0) throw new CudaException("cuModuleLoadData: image must be non-empty native memory");
    try (Arena a = Arena.ofConfined()) {
      MemorySegment v = a.allocate(J);
      check(call(() -> (int) cuModuleLoadData.invokeExact(v, image)), "cuModuleLoadData");
      return v.get(J, 0);
    }
  }

  public void moduleUnload(long module) {
    requireNonNull(module, "module");
    check(call(() -> (int) cuModuleUnload.invokeExact(module)), "cuModuleUnload");
  }

  public long function(long module, String name) {
    requireNonNull(module, "module");
    try (Arena a = Arena.ofConfined()) {
      MemorySegment v = a.allocate(J);
      MemorySegment n = a.allocateFrom(name);
      check(call(() -> (int) cuModuleGetFunction.invokeExact(v, module, n)), "cuModuleGetFunction(" + name + ")");
      return v.get(J, 0);
    }
  }

  public void setMaxDynamicSharedMemory(long function, int bytes) {
    requireNonNull(function, "function");
    check(call(() -> (int) cuFuncSetAttribute.invokeExact(function, FUNC_ATTR_MAX_DYNAMIC_SHARED, bytes)), "cuFuncSetAttribute");
  }

  /** One of a kernel's attributes (cuFuncGetAttribute), e.g. {@link #FUNC_ATTR_NUM_REGS} registers per thread. */
  public int functionAttribute(long function, int attribute) {
    requireNonNull(function, "function");
    try (Arena a = Arena.ofConfined()) {
      MemorySegment v = a.allocate(I);
      check(call(() -> (int) cuFuncGetAttribute.invokeExact(v, attribute, function)), "cuFuncGetAttribute(" + attribute + ")");
      return v.get(I, 0);
    }
  }

  /**
   * Queues a kernel. {@code params} is the array of pointers to each argument's value (cuLaunchKernel's
   * kernelParams); the caller lays it out to match the kernel's signature. Grid and block sizes are checked
   * against the hardware limits first.
   */
  public void launch(long function, Dim3 grid, Dim3 block, int sharedBytes, long stream, MemorySegment params) {
    requireNonNull(function, "kernel function");
    if (grid.x() < 1 || grid.y() < 1 || grid.z() < 1 || grid.y() > 65535 || grid.z() > 65535)
      throw new CudaException("kernel launch: grid " + grid + " outside 1..2^31-1 x 1..65535 x 1..65535");
    long threads = (long) block.x() * block.y() * block.z();
    if (block.x() < 1 || block.y() < 1 || block.z() < 1 || threads > 1024)
      throw new CudaException("kernel launch: block " + block + " must have 1..1024 threads");
    if (sharedBytes < 0) throw new CudaException("kernel launch: negative shared memory " + sharedBytes);
    check(call(() -> (int) cuLaunchKernel.invokeExact(function, grid.x(), grid.y(), grid.z(), block.x(), block.y(), block.z(),
        sharedBytes, stream, params, MemorySegment.NULL)), "cuLaunchKernel");
  }

  /** A grid or block shape. */
  public record Dim3(int x, int y, int z) {
    public static Dim3 of(int x) { return new Dim3(x, 1, 1); }

    public static Dim3 of(int x, int y) { return new Dim3(x, y, 1); }
  }
}
