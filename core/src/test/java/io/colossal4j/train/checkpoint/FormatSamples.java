package io.colossal4j.train.checkpoint;

import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.train.metrics.TensorBoardWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Writes the files that {@code scripts/check_formats.py} checks with Python's safetensors, timm and TensorBoard:
 * {@code DIR/java.safetensors} (t.&lt;dtype&gt; = values i*0.5-1, i-2 or i%2 for i = 0..5, shape [2, 3]; a scalar
 * 3.25) and {@code DIR/tb/events.out.tfevents.*} (train/loss = 1/s at steps 1..5, eval/accuracy 0.875 at step 5).
 * Run from the test classpath: {@code java -cp core/target/test-classes:core/target/classes:<snakeyaml> ... FormatSamples DIR}.
 */
public final class FormatSamples {
  private FormatSamples() {}

  public static void main(String[] args) throws Exception {
    Path dir = Path.of(args[0]);
    Files.createDirectories(dir);
    try (var cpu = CpuBackend.reference()) {
      Map<String, Tensor> m = new LinkedHashMap<>();
      for (DType t : DType.values()) {
        double[] v = new double[6];
        for (int i = 0; i < 6; i++) v[i] = t == DType.BOOL ? i % 2 : t.isFloating() ? i * 0.5 - 1 : i - 2;
        m.put("t." + t.name().toLowerCase(), Tensor.of(v, Shape.of(2, 3), t, cpu));
      }
      m.put("scalar", Tensor.scalar(3.25, DType.F32, cpu));
      Safetensors.write(dir.resolve("java.safetensors"), m, Map.of("format", "pt", "who", "colossal4j"));
    }
    try (var w = new TensorBoardWriter(dir.resolve("tb"))) {
      for (int s = 1; s <= 5; s++) w.scalar("train/loss", 1.0 / s, s);
      w.scalar("eval/accuracy", 0.875, 5);
    }
  }
}
