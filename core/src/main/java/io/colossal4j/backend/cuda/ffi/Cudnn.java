package io.colossal4j.backend.cuda.ffi;

import static io.colossal4j.backend.cuda.ffi.Binder.I;
import static io.colossal4j.backend.cuda.ffi.Binder.J;
import static io.colossal4j.backend.cuda.ffi.Binder.P;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

/**
 * cuDNN (libcudnn.so.9): the handle, its stream and version. Every status is checked and reported with
 * cudnnGetErrorString. The convolution and fused-attention entry points build on this handle.
 */
public final class Cudnn {
  private final MethodHandle create, destroy, setStream, getVersion, errorString;

  private Cudnn(Binder b) {
    create = b.status("cudnnCreate", P);
    destroy = b.status("cudnnDestroy", J);
    setStream = b.status("cudnnSetStream", J, J);
    getVersion = b.handle("cudnnGetVersion", FunctionDescriptor.of(J));
    errorString = b.handle("cudnnGetErrorString", FunctionDescriptor.of(P, I));
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
    throw new CudaException("libcudnn " + fn + " failed: " + text + " (" + status + ")", status);
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
}
