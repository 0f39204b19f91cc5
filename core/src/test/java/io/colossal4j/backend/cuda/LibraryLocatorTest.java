package io.colossal4j.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.backend.cuda.ffi.CudaUnavailableException;
import io.colossal4j.backend.cuda.ffi.LibraryLocator;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Library discovery order and the message for a library found nowhere (no GPU needed). */
class LibraryLocatorTest {
  static final LibraryLocator.Library FAKE =
      new LibraryLocator.Library("fake CUDA library", "C4J_LIBFAKE", List.of("libc4jfake.so.7", "libc4jfake.so"));

  private static Path touch(Path p) throws IOException {
    Files.createDirectories(p.getParent());
    return Files.writeString(p, "not really a library");
  }

  @Test void searchOrderIsEnvVarThenCudaHomeThenLdPathThenStandardThenSitePackages(@TempDir Path tmp) throws IOException {
    Path explicit = tmp.resolve("explicit");
    Path home = tmp.resolve("cuda");
    Path ld = tmp.resolve("ld");
    Path venv = tmp.resolve("venv");
    touch(venv.resolve("lib/python3.12/site-packages/nvidia/fake/lib/libc4jfake.so.7"));
    LibraryLocator loc = new LibraryLocator(Map.of("C4J_LIBFAKE", explicit.toString(), "CUDA_HOME", home.toString(),
        "LD_LIBRARY_PATH", ld + ":", "VIRTUAL_ENV", venv.toString()));
    List<String> where = loc.candidates(FAKE).stream().map(LibraryLocator.Candidate::where).distinct().toList();
    assertEquals(List.of("C4J_LIBFAKE", "CUDA_HOME", "LD_LIBRARY_PATH", "standard path", "python site-packages"), where);
    // only the site-packages copy exists, so that is what is found
    assertEquals(venv.resolve("lib/python3.12/site-packages/nvidia/fake/lib/libc4jfake.so.7"), loc.find(FAKE));
    // an earlier place wins once it has the file
    touch(ld.resolve("libc4jfake.so"));
    assertEquals(ld.resolve("libc4jfake.so"), loc.find(FAKE));
    Path file = touch(explicit.resolve("libc4jfake.so.7"));
    assertEquals(file, loc.find(FAKE));
  }

  @Test void explicitVariableMayNameTheFileItself(@TempDir Path tmp) throws IOException {
    Path file = touch(tmp.resolve("odd-name.so"));
    LibraryLocator loc = new LibraryLocator(Map.of("C4J_LIBFAKE", file.toString()));
    assertEquals(file, loc.find(FAKE));
  }

  @Test void missingLibraryListsEveryPlaceLooked(@TempDir Path tmp) {
    LibraryLocator loc = new LibraryLocator(Map.of("CUDA_HOME", tmp.resolve("cuda").toString(), "LD_LIBRARY_PATH", tmp.resolve("ld").toString()));
    try (Arena arena = Arena.ofConfined()) {
      CudaUnavailableException e = assertThrows(CudaUnavailableException.class, () -> loc.open(FAKE, arena));
      String msg = e.getMessage();
      assertTrue(msg.startsWith("fake CUDA library library not found (looked for libc4jfake.so.7, libc4jfake.so)"), msg);
      assertTrue(msg.contains("C4J_LIBFAKE: not set"), msg);
      assertTrue(msg.contains("CUDA_HOME: " + tmp.resolve("cuda/lib64")), msg);
      assertTrue(msg.contains("LD_LIBRARY_PATH: " + tmp.resolve("ld")), msg);
      assertTrue(msg.contains("standard path: /usr/local/cuda/lib64"), msg);
      assertTrue(msg.contains("system loader"), msg);
      assertTrue(msg.contains("Set C4J_LIBFAKE"), msg);
    }
  }

  @Test void aFileThatIsNotALibraryIsReportedNotCrashed(@TempDir Path tmp) throws IOException {
    Path file = touch(tmp.resolve("libc4jfake.so.7"));
    LibraryLocator loc = new LibraryLocator(Map.of("C4J_LIBFAKE", tmp.toString()));
    try (Arena arena = Arena.ofConfined()) {
      CudaUnavailableException e = assertThrows(CudaUnavailableException.class, () -> loc.open(FAKE, arena));
      assertTrue(e.getMessage().contains(file + " exists but did not load"), e.getMessage());
    }
  }
}
