package io.colossal4j.backend.cuda.ffi;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.SymbolLookup;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Finds the shared libraries of the CUDA stack. The environment is passed in by the caller (only the
 * launcher reads the process environment), so tests can describe any machine.
 *
 * <p>Search order for each library: its own variable ({@link Library#envVar()}, a file or a folder), then
 * {@code CUDA_HOME}/{@code CUDA_PATH} ({@code lib64}, {@code lib}), the folders of {@code LD_LIBRARY_PATH},
 * the standard install folders, the {@code nvidia/*}{@code /lib} folders of Python site-packages (where
 * pip's CUDA wheels put them), and last the system loader by file name (ld.so.cache). A library found
 * nowhere is a {@link CudaUnavailableException} listing every place looked at.
 */
public final class LibraryLocator {
  /** A library to find: what it is (for messages), the variable that names it, file names in order of preference. */
  public record Library(String description, String envVar, List<String> fileNames) {
    public Library {
      fileNames = List.copyOf(fileNames);
      if (fileNames.isEmpty()) throw new IllegalArgumentException("library " + description + " needs at least one file name");
    }
  }

  public static final Library DRIVER = new Library("CUDA driver", "C4J_LIBCUDA", List.of("libcuda.so.1", "libcuda.so"));
  public static final Library NVRTC = new Library("NVRTC", "C4J_LIBNVRTC", List.of("libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"));
  public static final Library CUBLASLT = new Library("cuBLASLt", "C4J_LIBCUBLASLT", List.of("libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so"));
  public static final Library CUDNN = new Library("cuDNN", "C4J_LIBCUDNN", List.of("libcudnn.so.9", "libcudnn.so"));
  public static final Library NCCL = new Library("NCCL", "C4J_LIBNCCL", List.of("libnccl.so.2", "libnccl.so"));

  private static final List<String> STANDARD_DIRS = List.of("/usr/local/cuda/lib64", "/usr/local/cuda/lib", "/usr/local/nvidia/lib64",
      "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/lib/wsl/lib");
  private static final List<String> PYTHON_ROOTS = List.of("/opt/torch/.venv/lib", "/usr/local/lib", "/usr/lib", "/opt/conda/lib");

  private final Map<String, String> env;

  public LibraryLocator(Map<String, String> env) { this.env = Map.copyOf(env); }

  /** A place a library may be: a file to try, or (for the last resort) a bare name for the system loader. */
  public record Candidate(String where, Path file) {}

  /** Every file, in search order, that would be tried for {@code lib} (existing or not). */
  public List<Candidate> candidates(Library lib) {
    List<Candidate> out = new ArrayList<>();
    String explicit = env.get(lib.envVar());
    if (explicit != null && !explicit.isBlank()) {
      Path p = Path.of(explicit);
      if (Files.isDirectory(p)) for (String f : lib.fileNames()) out.add(new Candidate(lib.envVar(), p.resolve(f)));
      else out.add(new Candidate(lib.envVar(), p));
    }
    for (String var : List.of("CUDA_HOME", "CUDA_PATH")) {
      String home = env.get(var);
      if (home != null && !home.isBlank())
        for (String sub : List.of("lib64", "lib")) addDir(out, var, Path.of(home, sub), lib);
    }
    String ld = env.getOrDefault("LD_LIBRARY_PATH", "");
    for (String d : ld.split(":")) if (!d.isBlank()) addDir(out, "LD_LIBRARY_PATH", Path.of(d), lib);
    for (String d : STANDARD_DIRS) addDir(out, "standard path", Path.of(d), lib);
    for (Path d : pythonNvidiaLibDirs()) addDir(out, "python site-packages", d, lib);
    return out;
  }

  private static void addDir(List<Candidate> out, String where, Path dir, Library lib) {
    for (String f : lib.fileNames()) out.add(new Candidate(where, dir.resolve(f)));
  }

  /** {@code site-packages/nvidia/<package>/lib} folders under the virtual environment, conda and the usual Python prefixes. */
  List<Path> pythonNvidiaLibDirs() {
    Set<Path> roots = new LinkedHashSet<>();
    for (String var : List.of("VIRTUAL_ENV", "CONDA_PREFIX")) {
      String v = env.get(var);
      if (v != null && !v.isBlank()) roots.add(Path.of(v, "lib"));
    }
    String home = env.get("HOME");
    if (home != null && !home.isBlank()) roots.add(Path.of(home, ".local", "lib"));
    for (String r : PYTHON_ROOTS) roots.add(Path.of(r));
    List<Path> out = new ArrayList<>();
    for (Path root : roots) {
      for (Path py : children(root, "python3*"))
        for (String pkgs : List.of("site-packages", "dist-packages"))
          for (Path pkg : children(py.resolve(pkgs).resolve("nvidia"), "*")) out.add(pkg.resolve("lib"));
    }
    String pythonPath = env.getOrDefault("PYTHONPATH", "");
    for (String p : pythonPath.split(":"))
      if (!p.isBlank()) for (Path pkg : children(Path.of(p, "nvidia"), "*")) out.add(pkg.resolve("lib"));
    return out;
  }

  private static List<Path> children(Path dir, String glob) {
    List<Path> out = new ArrayList<>();
    if (!Files.isDirectory(dir)) return out;
    try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, glob)) {
      for (Path p : ds) if (Files.isDirectory(p)) out.add(p);
    } catch (IOException e) {
      // an unreadable folder is one place fewer to look; the final message lists what was searched
    }
    out.sort(null);
    return out;
  }

  /** The first existing candidate file, or null. */
  public Path find(Library lib) {
    for (Candidate c : candidates(lib)) if (Files.isRegularFile(c.file())) return c.file();
    return null;
  }

  /**
   * Opens {@code lib} into {@code arena}: the first candidate file that exists and loads, else the system
   * loader by file name; throws a {@link CudaUnavailableException} listing every place looked at.
   */
  public SymbolLookup open(Library lib, Arena arena) {
    List<String> failures = new ArrayList<>();
    for (Candidate c : candidates(lib)) {
      if (!Files.isRegularFile(c.file())) continue;
      try {
        return SymbolLookup.libraryLookup(c.file(), arena);
      } catch (IllegalArgumentException e) {
        failures.add(c.file() + " exists but did not load: " + e.getMessage());
      }
    }
    for (String name : lib.fileNames()) {
      try {
        return SymbolLookup.libraryLookup(name, arena);
      } catch (IllegalArgumentException e) {
        // not known to the system loader either; reported below
      }
    }
    throw new CudaUnavailableException(missingMessage(lib, failures));
  }

  String missingMessage(Library lib, List<String> failures) {
    StringBuilder sb = new StringBuilder();
    sb.append(lib.description()).append(" library not found (looked for ").append(String.join(", ", lib.fileNames())).append(").\n");
    sb.append("Looked in, in order:\n");
    java.util.LinkedHashSet<String> dirs = new LinkedHashSet<>();
    for (Candidate c : candidates(lib)) dirs.add("  " + c.where() + ": " + (c.where().equals(lib.envVar()) ? c.file() : c.file().getParent()));
    if (env.get(lib.envVar()) == null) dirs.addFirst("  " + lib.envVar() + ": not set");
    dirs.forEach(d -> sb.append(d).append('\n'));
    sb.append("  system loader (ld.so.cache): ").append(String.join(", ", lib.fileNames())).append(" not known\n");
    for (String f : failures) sb.append("  ").append(f).append('\n');
    sb.append("Set ").append(lib.envVar()).append(" to the library file or its folder, or CUDA_HOME / LD_LIBRARY_PATH to where it is installed.");
    return sb.toString();
  }
}
