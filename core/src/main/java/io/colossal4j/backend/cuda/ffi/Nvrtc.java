package io.colossal4j.backend.cuda.ffi;

import static io.colossal4j.backend.cuda.ffi.Binder.I;
import static io.colossal4j.backend.cuda.ffi.Binder.J;
import static io.colossal4j.backend.cuda.ffi.Binder.P;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.List;

/**
 * NVRTC, the runtime CUDA C++ compiler: source text in, cubin out. A compile error is a
 * {@link CudaException} holding the compiler's log.
 */
public final class Nvrtc {
  private static final int NVRTC_ERROR_COMPILATION = 6;

  private final MethodHandle nvrtcVersion, nvrtcCreateProgram, nvrtcCompileProgram, nvrtcGetProgramLogSize, nvrtcGetProgramLog,
      nvrtcGetCUBINSize, nvrtcGetCUBIN, nvrtcDestroyProgram, nvrtcGetErrorString;

  private Nvrtc(Binder b) {
    nvrtcVersion = b.status("nvrtcVersion", P, P);
    nvrtcCreateProgram = b.status("nvrtcCreateProgram", P, P, P, I, P, P);
    nvrtcCompileProgram = b.status("nvrtcCompileProgram", J, I, P);
    nvrtcGetProgramLogSize = b.status("nvrtcGetProgramLogSize", J, P);
    nvrtcGetProgramLog = b.status("nvrtcGetProgramLog", J, P);
    nvrtcGetCUBINSize = b.status("nvrtcGetCUBINSize", J, P);
    nvrtcGetCUBIN = b.status("nvrtcGetCUBIN", J, P);
    nvrtcDestroyProgram = b.status("nvrtcDestroyProgram", P);
    nvrtcGetErrorString = b.handle("nvrtcGetErrorString", FunctionDescriptor.of(P, I));
  }

  public static Nvrtc load(LibraryLocator locator, Arena arena) {
    return new Nvrtc(new Binder(locator.open(LibraryLocator.NVRTC, arena), "libnvrtc"));
  }

  private String describe(int status) {
    try {
      return Binder.cString((MemorySegment) nvrtcGetErrorString.invokeExact(status)) + " (" + status + ")";
    } catch (Throwable t) {
      throw Binder.rethrow(t);
    }
  }

  private void check(int status, String fn) {
    if (status != 0) throw new CudaException("libnvrtc " + fn + " failed: " + describe(status), status);
  }

  private static int invoke(MethodHandle h, Object... args) {
    try {
      return (int) h.invokeWithArguments(args);
    } catch (Throwable t) {
      throw Binder.rethrow(t);
    }
  }

  /** "13.0". */
  public String version() {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment major = a.allocate(I), minor = a.allocate(I);
      check(invoke(nvrtcVersion, major, minor), "nvrtcVersion");
      return major.get(I, 0) + "." + minor.get(I, 0);
    }
  }

  /**
   * Compiles {@code source} (named {@code name} in messages) with {@code options} such as
   * {@code --gpu-architecture=sm_90} and returns the cubin. A compile error carries the full log.
   */
  public byte[] compileToCubin(String source, String name, List<String> options) {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment progOut = a.allocate(J);
      check(invoke(nvrtcCreateProgram, progOut, a.allocateFrom(source), a.allocateFrom(name), 0, MemorySegment.NULL, MemorySegment.NULL),
          "nvrtcCreateProgram");
      long prog = progOut.get(J, 0);
      try {
        MemorySegment opts = a.allocate(P, Math.max(1, options.size()));
        for (int i = 0; i < options.size(); i++) opts.setAtIndex(P, i, a.allocateFrom(options.get(i)));
        int st = invoke(nvrtcCompileProgram, prog, options.size(), opts);
        if (st == NVRTC_ERROR_COMPILATION)
          throw new CudaException("NVRTC could not compile " + name + " with " + options + ":\n" + log(a, prog), st);
        check(st, "nvrtcCompileProgram(" + name + ")");
        MemorySegment size = a.allocate(J);
        check(invoke(nvrtcGetCUBINSize, prog, size), "nvrtcGetCUBINSize");
        long n = size.get(J, 0);
        if (n <= 0 || n > Integer.MAX_VALUE) throw new CudaException("NVRTC returned a cubin of " + n + " bytes for " + name);
        MemorySegment cubin = a.allocate(n);
        check(invoke(nvrtcGetCUBIN, prog, cubin), "nvrtcGetCUBIN");
        return cubin.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
      } finally {
        check(invoke(nvrtcDestroyProgram, progOut), "nvrtcDestroyProgram");
      }
    }
  }

  private String log(Arena a, long prog) {
    MemorySegment size = a.allocate(J);
    check(invoke(nvrtcGetProgramLogSize, prog, size), "nvrtcGetProgramLogSize");
    long n = size.get(J, 0);
    if (n <= 1) return "(empty log)";
    MemorySegment buf = a.allocate(n);
    check(invoke(nvrtcGetProgramLog, prog, buf), "nvrtcGetProgramLog");
    return buf.getString(0);
  }
}
