package io.colossal4j.architecture;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The dependency directions of STYLE.md, checked on the sources: tensor/backend ← autograd ← ops ← nn ← models,
 * step ← parallel ← train ← cli; nothing below {@code train} imports it; only {@code *.ffi} packages touch
 * {@code Linker}; only {@code backend.cpu.simd} imports the Vector API; only {@code launch} reads the environment.
 */
class LayeringTest {
  static final Path SRC = Path.of("src/main/java/io/colossal4j");
  static final Pattern IMPORT = Pattern.compile("^import (?:static )?io\\.colossal4j\\.([a-z0-9_]+)", Pattern.MULTILINE);

  /** Package → the top-level packages it must not import. */
  static final Map<String, List<String>> FORBIDDEN = Map.of(
      "tensor", List.of("autograd", "ops", "nn", "models", "step", "parallel", "distributed", "train", "data", "launch", "cli"),
      "autograd", List.of("nn", "models", "step", "parallel", "distributed", "train", "data", "launch", "cli"),
      "ops", List.of("nn", "models", "step", "parallel", "distributed", "train", "data", "launch", "cli"),
      "nn", List.of("models", "step", "parallel", "distributed", "train", "data", "launch", "cli"),
      "models", List.of("step", "distributed", "parallel", "train", "data", "launch", "cli"),
      "models.parallel", List.of("train", "data", "launch", "cli"),   // a family's tensor plan (models.<family>.parallel)
      "step", List.of("parallel", "distributed", "train", "data", "launch", "cli"),
      "parallel", List.of("train", "data", "launch", "cli"),
      "distributed", List.of("nn", "models", "step", "parallel", "train", "data", "cli"),
      "train", List.of("cli"));

  private static List<Path> sources() throws IOException {
    try (Stream<Path> s = Files.walk(SRC)) {
      return s.filter(p -> p.toString().endsWith(".java")).toList();
    }
  }

  private static String topPackage(Path file) {
    Path rel = SRC.relativize(file);
    String top = rel.getName(0).toString();
    return top.equals("models") && rel.getNameCount() > 3 && rel.getName(2).toString().equals("parallel") ? "models.parallel" : top;
  }

  @Test void dependenciesPointDownward() throws IOException {
    List<String> violations = new ArrayList<>();
    for (Path f : sources()) {
      List<String> banned = FORBIDDEN.getOrDefault(topPackage(f), List.of());
      Matcher m = IMPORT.matcher(Files.readString(f));
      while (m.find()) if (banned.contains(m.group(1))) violations.add(SRC.relativize(f) + " imports " + m.group(1));
    }
    assertEquals(List.of(), violations);
  }

  @Test void nativeCallsVectorApiAndEnvironmentStayInTheirPackages() throws IOException {
    List<String> violations = new ArrayList<>();
    for (Path f : sources()) {
      String rel = SRC.relativize(f).toString().replace('\\', '/'), text = Files.readString(f);
      if (text.contains("import java.lang.foreign.Linker") && !rel.contains("/ffi/")) violations.add(rel + " uses Linker outside an ffi package");
      if (text.contains("import jdk.incubator.vector") && !rel.startsWith("backend/cpu/simd/")) violations.add(rel + " imports the Vector API");
      if (text.contains("System.getenv") && !rel.startsWith("launch/")) violations.add(rel + " reads the environment");
    }
    assertEquals(List.of(), violations);
  }

  /**
   * Float lane sums must run in a fixed order (VMath.sumLanes): reduceLanes(ADD) rounds differently in its
   * intrinsic and its fallback, and which runs depends on JIT timing, so identical steps would differ in
   * the last bit and a resumed run would not equal an uninterrupted one.
   */
  @Test void floatLaneSumsHaveAFixedOrder() throws IOException {
    List<String> violations = new ArrayList<>();
    for (Path f : sources())
      if (Files.readString(f).matches("(?s).*reduceLanes\\(\\s*VectorOperators\\.ADD.*")) violations.add(SRC.relativize(f) + " sums lanes with reduceLanes(ADD)");
    assertEquals(List.of(), violations);
  }
}
