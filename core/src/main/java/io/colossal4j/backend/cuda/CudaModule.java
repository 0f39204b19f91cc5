package io.colossal4j.backend.cuda;

import io.colossal4j.backend.cuda.ffi.CudaException;
import io.colossal4j.backend.cuda.ffi.Driver;
import io.colossal4j.backend.cuda.ffi.Nvrtc;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Our CUDA C kernels as one loaded module. The sources (resources under {@code io/colossal4j/backend/cuda/kernels})
 * are concatenated and compiled by NVRTC for the device's architecture at first use; the cubin is cached on
 * disk under {@code <cacheDir>/<sha256 of source, options and NVRTC version>-sm_XY.cubin}, so later runs load it
 * without compiling. Function handles are looked up once and kept. Thread-safe.
 */
public final class CudaModule implements AutoCloseable {
  static final List<String> SOURCES = List.of("common.cuh", "elementwise.cu", "elementwise_vec.cu", "reduce.cu", "norm.cu", "norm_vec.cu", "matmul.cu", "spatial.cu",
      "indexing.cu",
      "attention.cu", "attention2.cu", "attention3.cu", "optim.cu");

  private final Driver driver;
  private final long module;
  private final ConcurrentHashMap<String, Long> functions = new ConcurrentHashMap<>();
  private final String origin;

  private CudaModule(Driver driver, long module, String origin) {
    this.driver = driver;
    this.module = module;
    this.origin = origin;
  }

  /** The concatenated kernel source, as compiled. */
  static String source() {
    StringBuilder sb = new StringBuilder();
    for (String name : SOURCES) {
      String path = "kernels/" + name;
      try (InputStream in = CudaModule.class.getResourceAsStream(path)) {
        if (in == null) throw new IllegalStateException("kernel source " + path + " is missing from the classpath");
        sb.append("// ---- ").append(name).append('\n').append(new String(in.readAllBytes(), StandardCharsets.UTF_8)).append('\n');
      } catch (IOException e) {
        throw new UncheckedIOException("reading kernel source " + path, e);
      }
    }
    return sb.toString();
  }

  static List<String> options(int ccMajor, int ccMinor) {
    return List.of("--gpu-architecture=sm_" + ccMajor + ccMinor, "--std=c++17", "-default-device", "-lineinfo");
  }

  /** The cache file of the kernels compiled by {@code nvrtc} for compute capability ccMajor.ccMinor. */
  static Path cacheFile(Path cacheDir, Nvrtc nvrtc, int ccMajor, int ccMinor) {
    String key = sha256(source() + "\n" + options(ccMajor, ccMinor) + "\nnvrtc " + nvrtc.version()) + "-sm_" + ccMajor + ccMinor;
    return cacheDir.resolve(key + ".cubin");
  }

  /**
   * Compiles the kernels for a compute capability without a GPU (NVRTC only) into the cache folder, under the
   * name a backend with the same NVRTC version looks for: machines that share or receive the folder load the
   * cubin instead of compiling at first use. Returns the file; an existing entry is kept.
   */
  public static Path precompile(Nvrtc nvrtc, int ccMajor, int ccMinor, Path cacheDir) {
    Path target = cacheFile(cacheDir, nvrtc, ccMajor, ccMinor);
    if (!Files.isRegularFile(target)) writeAtomically(target, nvrtc.compileToCubin(source(), "colossal4j_kernels.cu", options(ccMajor, ccMinor)));
    return target;
  }

  /** Loads the module for the current context, compiling (and caching) it if no cached cubin matches. */
  static CudaModule load(Driver driver, Nvrtc nvrtc, int ccMajor, int ccMinor, Path cacheDir) {
    String src = source();
    List<String> opts = options(ccMajor, ccMinor);
    Path cached = cacheDir == null ? null : cacheFile(cacheDir, nvrtc, ccMajor, ccMinor);
    byte[] cubin = null;
    String origin;
    if (cached != null && Files.isRegularFile(cached)) {
      try {
        cubin = Files.readAllBytes(cached);
      } catch (IOException e) {
        cubin = null; // an unreadable cache entry is recompiled below
      }
    }
    if (cubin != null) {
      origin = "cache " + cached;
    } else {
      cubin = nvrtc.compileToCubin(src, "colossal4j_kernels.cu", opts);
      origin = "NVRTC " + nvrtc.version() + " " + opts;
      if (cached != null) writeAtomically(cached, cubin);
    }
    try (Arena a = Arena.ofConfined()) {
      MemorySegment image = a.allocate(cubin.length + 1L);
      MemorySegment.copy(cubin, 0, image, ValueLayout.JAVA_BYTE, 0, cubin.length);
      return new CudaModule(driver, driver.moduleLoad(image), origin);
    }
  }

  private static void writeAtomically(Path target, byte[] bytes) {
    try {
      Files.createDirectories(target.getParent());
      Path tmp = Files.createTempFile(target.getParent(), "kernels", ".tmp");
      Files.write(tmp, bytes);
      Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException e) {
      // the cache is an optimisation: a read-only folder means compiling again next time, not failing now
    }
  }

  static String sha256(String s) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8)));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /** The kernel named {@code name} (an extern "C" entry point). */
  long function(String name) {
    return functions.computeIfAbsent(name, n -> {
      try {
        return driver.function(module, n);
      } catch (CudaException e) {
        throw new CudaException("kernel " + n + " is not in the module (" + origin + "): " + e.getMessage(), e.status());
      }
    });
  }

  /** Where the cubin came from ("cache <file>" or "NVRTC <version> <options>"). */
  String origin() { return origin; }

  @Override public void close() { driver.moduleUnload(module); }
}
