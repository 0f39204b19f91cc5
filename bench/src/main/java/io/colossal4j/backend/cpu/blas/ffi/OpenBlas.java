package io.colossal4j.backend.cpu.blas.ffi;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;

/**
 * OpenBLAS bound through the Foreign Function &amp; Memory API: {@code cblas_sgemm} and the thread-count
 * controls, nothing else. The library comes from the {@code org.bytedeco:openblas} jar (classifier
 * linux-x86_64) on the class path: its shared objects are extracted to a fresh temporary directory and
 * loaded in dependency order (libgcc_s, libquadmath, libgfortran, then libopenblas, whose RUNPATH is
 * {@code $ORIGIN}). A missing library is an error that lists the resources looked for; nothing falls back.
 *
 * <p>Used by the benchmarks as a peer. Thread-safe after construction (OpenBLAS's sgemm is reentrant).
 */
public final class OpenBlas {
  private static final String DIR = "org/bytedeco/openblas/linux-x86_64/";
  private static final String[] LIBS = {"libgcc_s.so.1", "libquadmath.so.0", "libgfortran.so.5", "libopenblas.so.0"};
  private static final int ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112;

  private final MethodHandle sgemm;
  private final MethodHandle setThreads;
  private final MethodHandle getThreads;
  private final MethodHandle config;

  private OpenBlas(SymbolLookup lib) {
    Linker linker = Linker.nativeLinker();
    ValueLayout.OfInt i = ValueLayout.JAVA_INT;
    ValueLayout.OfFloat f = ValueLayout.JAVA_FLOAT;
    ValueLayout p = ValueLayout.ADDRESS;
    sgemm = linker.downcallHandle(find(lib, "cblas_sgemm"), FunctionDescriptor.ofVoid(i, i, i, i, i, i, f, p, i, p, i, f, p, i));
    setThreads = linker.downcallHandle(find(lib, "openblas_set_num_threads"), FunctionDescriptor.ofVoid(i));
    getThreads = linker.downcallHandle(find(lib, "openblas_get_num_threads"), FunctionDescriptor.of(i));
    config = linker.downcallHandle(find(lib, "openblas_get_config"), FunctionDescriptor.of(p));
  }

  /** Extracts and loads the library from the class path; the loaded code lives as long as the JVM. */
  public static OpenBlas load() {
    Path dir;
    try {
      dir = Files.createTempDirectory("c4j-openblas");
    } catch (IOException e) {
      throw new IllegalStateException("OpenBLAS: cannot create a temporary directory: " + e.getMessage(), e);
    }
    List<String> missing = new ArrayList<>();
    ClassLoader cl = OpenBlas.class.getClassLoader();
    for (String name : LIBS) {
      try (InputStream in = cl.getResourceAsStream(DIR + name)) {
        if (in == null) { missing.add(DIR + name); continue; }
        Files.copy(in, dir.resolve(name), StandardCopyOption.REPLACE_EXISTING);
      } catch (IOException e) {
        throw new IllegalStateException("OpenBLAS: cannot extract " + DIR + name + " to " + dir + ": " + e.getMessage(), e);
      }
    }
    if (!missing.isEmpty())
      throw new IllegalStateException("OpenBLAS not found: looked on the class path for " + missing
          + " (they come from org.bytedeco:openblas:0.3.31-1.5.13 with classifier linux-x86_64)");
    SymbolLookup lookup = null;
    for (String name : LIBS) lookup = SymbolLookup.libraryLookup(dir.resolve(name), Arena.global());
    return new OpenBlas(lookup);
  }

  private static MemorySegment find(SymbolLookup lib, String symbol) {
    return lib.find(symbol).orElseThrow(() -> new IllegalStateException("OpenBLAS: symbol " + symbol + " not found in libopenblas.so.0"));
  }

  /** Sets OpenBLAS's thread count and checks that it took effect. */
  public void threads(int n) {
    try {
      setThreads.invokeExact(n);
      int got = (int) getThreads.invokeExact();
      if (got != n) throw new IllegalStateException("OpenBLAS: asked for " + n + " threads, it reports " + got);
    } catch (RuntimeException e) {
      throw e;
    } catch (Throwable t) {
      throw new IllegalStateException("OpenBLAS thread setup failed", t);
    }
  }

  /** The library's build description (version, target core, threading), for the benchmark header. */
  public String config() {
    try {
      MemorySegment s = (MemorySegment) config.invokeExact();
      if (s.equals(MemorySegment.NULL)) throw new IllegalStateException("OpenBLAS: openblas_get_config returned NULL");
      return s.reinterpret(4096).getString(0);
    } catch (RuntimeException e) {
      throw e;
    } catch (Throwable t) {
      throw new IllegalStateException("OpenBLAS config query failed", t);
    }
  }

  /**
   * Row-major C[m×n] = A·B (+ beta·C) on native f32 buffers; {@code transA}/{@code transB} say the operand is
   * stored transposed. Checks the dimensions and buffer sizes first, since BLAS itself would read out of bounds.
   */
  public void sgemm(boolean transA, boolean transB, int m, int n, int k, MemorySegment a, MemorySegment b, float beta, MemorySegment c) {
    if (m < 0 || n < 0 || k < 0) throw new IllegalArgumentException("sgemm: negative size m=" + m + " n=" + n + " k=" + k);
    check("A", a, (long) m * k);
    check("B", b, (long) k * n);
    check("C", c, (long) m * n);
    int lda = transA ? m : k, ldb = transB ? k : n;
    try {
      sgemm.invokeExact(ROW_MAJOR, transA ? TRANS : NO_TRANS, transB ? TRANS : NO_TRANS, m, n, k, 1f, a, Math.max(1, lda), b,
          Math.max(1, ldb), beta, c, Math.max(1, n));
    } catch (Throwable t) {
      throw new IllegalStateException("cblas_sgemm failed for m=" + m + " n=" + n + " k=" + k, t);
    }
  }

  private static void check(String name, MemorySegment s, long elements) {
    if (!s.isNative()) throw new IllegalArgumentException("sgemm: " + name + " must be native memory");
    if (s.byteSize() < elements * 4)
      throw new IllegalArgumentException("sgemm: " + name + " has " + s.byteSize() + " bytes, needs " + elements * 4);
  }
}
