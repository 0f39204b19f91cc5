package io.colossal4j.train.metrics;

import io.colossal4j.train.json.Json;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code metrics.jsonl}: one JSON object per line, appended and flushed as it happens (so a crash loses at most
 * the line being written, and a resumed run continues the same file). Step lines hold {@code step, epoch, loss,
 * lr, samples_per_s} (and {@code accuracy} when measured); evaluation lines {@code step, epoch, eval_loss,
 * eval_accuracy}. Not thread-safe.
 */
public final class MetricsLog implements AutoCloseable {
  private final BufferedWriter out;

  public MetricsLog(Path file) {
    try {
      Files.createDirectories(file.toAbsolutePath().getParent());
      out = Files.newBufferedWriter(file, StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot open " + file + " for metrics: " + e.getMessage(), e);
    }
  }

  public void step(StepMetrics m) {
    Map<String, Object> j = new LinkedHashMap<>();
    j.put("step", m.step());
    j.put("epoch", m.epoch());
    j.put("loss", m.loss());
    j.put("lr", m.lr());
    j.put("samples_per_s", m.samplesPerS());
    if (!Double.isNaN(m.accuracy())) j.put("accuracy", m.accuracy());
    line(j);
  }

  public void eval(EvalMetrics m) {
    Map<String, Object> j = new LinkedHashMap<>();
    j.put("step", m.step());
    j.put("epoch", m.epoch());
    j.put("eval_loss", m.loss());
    j.put("eval_accuracy", m.accuracy());
    line(j);
  }

  private void line(Map<String, Object> j) {
    try {
      out.write(Json.write(j));
      out.write('\n');
      out.flush();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write metrics: " + e.getMessage(), e);
    }
  }

  @Override public void close() {
    try {
      out.close();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Reads a metrics file back (e.g. to plot a resumed run's whole history); a torn last line is skipped. */
  public static History read(Path file) {
    History h = new History();
    if (!Files.exists(file)) return h;
    List<String> lines;
    try {
      lines = Files.readAllLines(file, StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + file + ": " + e.getMessage(), e);
    }
    for (String line : new ArrayList<>(lines)) {
      if (line.isBlank()) continue;
      Object o;
      try {
        o = Json.parse(line, file.toString());
      } catch (IllegalArgumentException e) {
        continue; // the line a crash cut short
      }
      if (!(o instanceof Map<?, ?> m)) continue;
      long step = num(m, "step").longValue();
      int epoch = num(m, "epoch").intValue();
      if (m.containsKey("eval_loss")) h.add(new EvalMetrics(step, epoch, num(m, "eval_loss").doubleValue(), num(m, "eval_accuracy").doubleValue()));
      else h.add(new StepMetrics(step, epoch, num(m, "loss").doubleValue(), num(m, "lr").doubleValue(),
          num(m, "samples_per_s").doubleValue(), m.containsKey("accuracy") ? num(m, "accuracy").doubleValue() : Double.NaN));
    }
    return h;
  }

  private static Number num(Map<?, ?> m, String key) {
    return m.get(key) instanceof Number n ? n : Double.NaN;
  }
}
