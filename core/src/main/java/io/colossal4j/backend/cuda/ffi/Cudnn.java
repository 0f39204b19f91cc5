package io.colossal4j.backend.cuda.ffi;

import static io.colossal4j.backend.cuda.ffi.Binder.I;
import static io.colossal4j.backend.cuda.ffi.Binder.J;
import static io.colossal4j.backend.cuda.ffi.Binder.P;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

/**
 * cuDNN (libcudnn.so.9): the handle, its stream and version, and the backend (graph) API: descriptors created,
 * given attributes, finalized, queried, executed and destroyed. Descriptors are opaque 64-bit handles owned by the
 * caller. Every status is checked and reported with cudnnGetErrorString and, where the library has it, the
 * detailed message of cudnnGetLastErrorString.
 */
public final class Cudnn {
  /** The status cuDNN returns for a graph no engine supports ({@code CUDNN_STATUS_NOT_SUPPORTED} and its sub-codes). */
  public static boolean notSupported(int status) { return status / 1000 == 3; }

  private final MethodHandle create, destroy, setStream, getVersion, errorString, lastError;
  private final MethodHandle descCreate, descDestroy, descSet, descGet, descFinalize, execute;

  private Cudnn(Binder b) {
    create = b.status("cudnnCreate", P);
    destroy = b.status("cudnnDestroy", J);
    setStream = b.status("cudnnSetStream", J, J);
    getVersion = b.handle("cudnnGetVersion", FunctionDescriptor.of(J));
    errorString = b.handle("cudnnGetErrorString", FunctionDescriptor.of(P, I));
    lastError = b.has("cudnnGetLastErrorString") ? b.handle("cudnnGetLastErrorString", FunctionDescriptor.ofVoid(P, J)) : null;
    descCreate = b.status("cudnnBackendCreateDescriptor", I, P);
    descDestroy = b.status("cudnnBackendDestroyDescriptor", J);
    descSet = b.status("cudnnBackendSetAttribute", J, I, I, J, P);
    descGet = b.status("cudnnBackendGetAttribute", J, I, I, J, P, P);
    descFinalize = b.status("cudnnBackendFinalize", J);
    execute = b.status("cudnnBackendExecute", J, J, J);
  }

  public static Cudnn load(LibraryLocator locator, Arena arena) {
    return new Cudnn(new Binder(locator.open(LibraryLocator.CUDNN, arena), "libcudnn"));
  }

  private void check(int status, String fn) {
    if (status == 0) return;
    String text;
    try {
      text = Binder.cString((MemorySegment) errorString.invokeExact(status));
    } catch (Throwable t) {
      throw Binder.rethrow(t);
    }
    String detail = lastError();
    throw new CudaException("libcudnn " + fn + " failed: " + text + " (" + status + ")" + (detail.isEmpty() ? "" : ": " + detail), status);
  }

  /** The library's detailed message about the last failure on this thread ("" when it has none or no such function). */
  private String lastError() {
    if (lastError == null) return "";
    try (Arena a = Arena.ofConfined()) {
      MemorySegment buf = a.allocate(1024);
      lastError.invokeExact(buf, 1024L);
      return buf.getString(0).strip();
    } catch (Throwable t) {
      return "";
    }
  }

  /** cudnnGetVersion(): major*10000 + minor*100 + patch for cuDNN 9 (91900 is 9.19.0). */
  public long version() {
    try {
      return (long) getVersion.invokeExact();
    } catch (Throwable t) {
      throw Binder.rethrow(t);
    }
  }

  /** A cuDNN handle for the current context; needs a current CUDA context on this thread. */
  public long create() {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment out = a.allocate(J);
      check((int) create.invokeExact(out), "cudnnCreate");
      return out.get(J, 0);
    } catch (Throwable t) {
      throw Binder.rethrow(t);
    }
  }

  public void setStream(long handle, long stream) {
    if (handle == 0) throw new CudaException("cudnnSetStream: null handle");
    try {
      check((int) setStream.invokeExact(handle, stream), "cudnnSetStream");
    } catch (Throwable t) {
      throw Binder.rethrow(t);
    }
  }

  public void destroy(long handle) {
    if (handle == 0) throw new CudaException("cudnnDestroy: null handle");
    try {
      check((int) destroy.invokeExact(handle), "cudnnDestroy");
    } catch (Throwable t) {
      throw Binder.rethrow(t);
    }
  }

  // ------------------------------------------------------------- backend (graph) API

  /** cudnnBackendCreateDescriptor(type): a new descriptor of that cudnnBackendDescriptorType_t. */
  public long createDescriptor(int type) {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment out = a.allocate(J);
      check((int) descCreate.invokeExact(type, out), "cudnnBackendCreateDescriptor(" + type + ")");
      return out.get(J, 0);
    } catch (Throwable t) {
      throw Binder.rethrow(t);
    }
  }

  /**
   * cudnnBackendSetAttribute: {@code count} elements of attribute type {@code type} read from {@code values}, which
   * must hold at least that many elements of the type's size (checked by the caller's layout).
   */
  public void setAttribute(long desc, int name, int type, long count, MemorySegment values) {
    if (desc == 0) throw new CudaException("cudnnBackendSetAttribute: null descriptor");
    try {
      check((int) descSet.invokeExact(desc, name, type, count, values), "cudnnBackendSetAttribute(attribute " + name + ")");
    } catch (Throwable t) {
      throw Binder.rethrow(t);
    }
  }

  /** cudnnBackendGetAttribute: up to {@code requested} elements into {@code values}; returns how many the attribute has. */
  public long getAttribute(long desc, int name, int type, long requested, MemorySegment values) {
    if (desc == 0) throw new CudaException("cudnnBackendGetAttribute: null descriptor");
    try (Arena a = Arena.ofConfined()) {
      MemorySegment count = a.allocate(J);
      check((int) descGet.invokeExact(desc, name, type, requested, count, values), "cudnnBackendGetAttribute(attribute " + name + ")");
      return count.get(J, 0);
    } catch (Throwable t) {
      throw Binder.rethrow(t);
    }
  }

  /** cudnnBackendFinalize; returns the status instead of throwing when the graph is merely unsupported. */
  public int finalizeDescriptor(long desc, String what) {
    if (desc == 0) throw new CudaException("cudnnBackendFinalize: null descriptor");
    int status;
    try {
      status = (int) descFinalize.invokeExact(desc);
    } catch (Throwable t) {
      throw Binder.rethrow(t);
    }
    if (!notSupported(status)) check(status, "cudnnBackendFinalize(" + what + ")");
    return status;
  }

  /** The detailed message of the last failure, for callers that handle an unsupported status themselves. */
  public String lastErrorMessage() { return lastError(); }

  public void destroyDescriptor(long desc) {
    if (desc == 0) return;
    try {
      check((int) descDestroy.invokeExact(desc), "cudnnBackendDestroyDescriptor");
    } catch (Throwable t) {
      throw Binder.rethrow(t);
    }
  }

  /** cudnnBackendExecute(handle, plan, variantPack): queues the plan on the handle's stream. */
  public void execute(long handle, long plan, long variantPack) {
    if (handle == 0 || plan == 0 || variantPack == 0) throw new CudaException("cudnnBackendExecute: null handle, plan or variant pack");
    try {
      check((int) execute.invokeExact(handle, plan, variantPack), "cudnnBackendExecute");
    } catch (Throwable t) {
      throw Binder.rethrow(t);
    }
  }
}
