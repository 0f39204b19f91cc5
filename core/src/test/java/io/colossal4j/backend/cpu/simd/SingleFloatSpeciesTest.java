package io.colossal4j.backend.cpu.simd;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The kernels name no float species but the preferred one (the class comment of {@link SimdKernels}: a second
 * float vector class reaching the JDK's shared type profiles made the JIT box the GEMM micro-kernel's vectors in
 * about half of all JVMs). JIT behaviour cannot be asserted in a fast test, so this guards its cause: any
 * {@code FloatVector.SPECIES_<shape>} other than {@code SPECIES_PREFERRED} in the package's sources fails here.
 */
class SingleFloatSpeciesTest {
  private static final Path SOURCES = Path.of("src/main/java/io/colossal4j/backend/cpu/simd");
  private static final Pattern OTHER_SPECIES = Pattern.compile("FloatVector\\.SPECIES_(?!PREFERRED\\b)\\w+");

  @Test void onlyThePreferredFloatSpecies() throws IOException {
    if (!Files.isDirectory(SOURCES)) throw new AssertionError("sources not found at " + SOURCES.toAbsolutePath() + " (tests run from the core module)");
    List<String> found = new ArrayList<>();
    try (Stream<Path> files = Files.list(SOURCES)) {
      for (Path f : files.filter(p -> p.toString().endsWith(".java")).toList()) {
        Matcher m = OTHER_SPECIES.matcher(Files.readString(f));
        while (m.find()) found.add(f.getFileName() + ": " + m.group());
      }
    }
    if (!found.isEmpty()) throw new AssertionError("float species other than SPECIES_PREFERRED: " + found);
  }
}
