package io.colossal4j.cli;

import io.colossal4j.backend.cuda.CudaModule;
import io.colossal4j.backend.cuda.CudaOptions;
import io.colossal4j.backend.cuda.ffi.CudaUnavailableException;
import io.colossal4j.backend.cuda.ffi.LibraryLocator;
import io.colossal4j.backend.cuda.ffi.Nvrtc;
import io.colossal4j.launch.HostEnvironment;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * {@code colossal kernels [--arch 90] [--cache DIR]}: compiles the CUDA kernels ahead of time with NVRTC, no GPU
 * needed, into the kernel cache (default: the backend's, ~/.cache/colossal4j/cuda-kernels). A GPU machine
 * that gets the folder (or shares it) loads the cubin instead of compiling at first use, which takes a minute
 * or more; the file name carries a hash of the sources, options and NVRTC version, so a stale entry is never used.
 */
final class KernelsCommand implements Main.Command {
  @Override public String summary() { return "compile the CUDA kernels ahead of time (NVRTC, no GPU needed) into the kernel cache"; }

  @Override public int run(String[] args) {
    CudaOptions opts = CudaOptions.defaults(HostEnvironment.current());
    Path cache = opts.kernelCacheDir();
    int arch = 90;
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      if ((a.equals("--arch") || a.equals("--cache")) && i + 1 == args.length) {
        System.err.println("colossal kernels: " + a + " needs a value");
        return 2;
      }
      switch (a) {
        case "--arch" -> {
          String v = args[++i].replace("sm_", "");
          if (!v.matches("[0-9]{2,3}") || Integer.parseInt(v) < 80) {
            System.err.println("colossal kernels: --arch '" + args[i] + "' is not a compute capability of 8.0 or newer (e.g. 90 or sm_90)");
            return 2;
          }
          arch = Integer.parseInt(v);
        }
        case "--cache" -> cache = Path.of(args[++i]);
        default -> {
          System.err.println("colossal kernels: unknown option '" + a + "' (valid: --arch CC, --cache DIR)");
          return 2;
        }
      }
    }
    try (Arena arena = Arena.ofShared()) {
      Nvrtc nvrtc;
      try {
        nvrtc = Nvrtc.load(new LibraryLocator(opts.environment()), arena);
      } catch (CudaUnavailableException e) {
        System.err.println("colossal kernels: " + e.getMessage());
        return 1;
      }
      long t0 = System.nanoTime();
      Path file = CudaModule.precompile(nvrtc, arch / 10, arch % 10, cache);
      if (!Files.isRegularFile(file)) {
        System.err.println("colossal kernels: could not write " + file + " (is the folder writable?)");
        return 1;
      }
      System.out.printf("kernels for sm_%d (NVRTC %s) in %s (%.1f s)%n", arch, nvrtc.version(), file, (System.nanoTime() - t0) / 1e9);
      return 0;
    }
  }
}
