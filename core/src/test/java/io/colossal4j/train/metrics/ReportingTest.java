package io.colossal4j.train.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Progress lines, metrics.jsonl, the plot, the summary table, and the reporter that ties them together. */
class ReportingTest {
  @TempDir Path tmp;

  static final class FakeClock {
    long nanos;

    long now() { return nanos; }
  }

  @Test void progressBarAndEta() {
    var buf = new ByteArrayOutputStream();
    FakeClock clock = new FakeClock();
    var p = new ConsoleProgress(new PrintStream(buf, true, StandardCharsets.UTF_8), ConsoleProgress.Mode.BAR, clock::now, 0);
    p.startEpoch(1, 5, 10, 0);
    clock.nanos = 4_000_000_000L; // 2 batches in 4 s: 2 s per batch, 8 left -> 16 s
    p.update(2, 0.51234, 0.8525, 1234.4);
    assertEquals("\repoch 2/5 [####....................] 2/10 loss 0.5123 acc 85.3% 1234 samples/s ETA 0:16\033[K",
        buf.toString(StandardCharsets.UTF_8));
    clock.nanos = 20_000_000_000L;
    p.update(10, 0.4, Double.NaN, 1000);
    assertTrue(buf.toString(StandardCharsets.UTF_8).endsWith("10/10 loss 0.4000 1000 samples/s in 0:20\033[K"));
    assertEquals("1:01:05", ConsoleProgress.duration(3665));
  }

  @Test void plainLinesAreThrottled() {
    var buf = new ByteArrayOutputStream();
    FakeClock clock = new FakeClock();
    var p = new ConsoleProgress(new PrintStream(buf, true, StandardCharsets.UTF_8), ConsoleProgress.Mode.PLAIN, clock::now, 10_000_000_000L);
    p.startEpoch(0, 1, 100, 0);
    for (int i = 1; i <= 100; i++) {
      clock.nanos = i * 1_000_000_000L; // 1 s per batch, a line every 10 s and one at the end
      p.update(i, 1.0, 0.5, 10);
    }
    p.endEpoch("  eval done");
    String[] lines = buf.toString(StandardCharsets.UTF_8).split("\n");
    assertEquals(11, lines.length, String.join("\n", lines));
    assertEquals("epoch 1/1 10/100 loss 1.0000 acc 50.0% 10 samples/s ETA 1:30", lines[0]);
    assertEquals("  eval done", lines[10]);
    assertTrue(!buf.toString(StandardCharsets.UTF_8).contains("\r"), "no carriage returns in plain mode");
  }

  @Test void metricsJsonlLinesAndReadBack() throws IOException {
    Path f = tmp.resolve("run/metrics.jsonl");
    try (MetricsLog log = new MetricsLog(f)) {
      log.step(new StepMetrics(10, 0, 0.5, 1e-3, 1500.25, Double.NaN));
      log.eval(new EvalMetrics(20, 0, 0.25, 0.875));
    }
    try (MetricsLog log = new MetricsLog(f)) { // reopened (a resumed run) appends
      log.step(new StepMetrics(30, 1, Double.NaN, 2e-3, 100, 0.5));
    }
    Files.writeString(f, "{\"step\": 40, \"ep", java.nio.file.StandardOpenOption.APPEND); // torn by a crash
    List<String> lines = Files.readAllLines(f);
    assertEquals("{\"step\":10,\"epoch\":0,\"loss\":0.5,\"lr\":0.001,\"samples_per_s\":1500.25}", lines.get(0));
    assertEquals("{\"step\":20,\"epoch\":0,\"eval_loss\":0.25,\"eval_accuracy\":0.875}", lines.get(1));
    assertEquals("{\"step\":30,\"epoch\":1,\"loss\":null,\"lr\":0.002,\"samples_per_s\":100.0,\"accuracy\":0.5}", lines.get(2));
    History h = MetricsLog.read(f);
    assertEquals(List.of(new EvalMetrics(20, 0, 0.25, 0.875)), h.evals());
    assertEquals(2, h.steps().size());
    assertEquals(new StepMetrics(10, 0, 0.5, 1e-3, 1500.25, Double.NaN), h.steps().get(0));
    assertTrue(Double.isNaN(h.steps().get(1).loss()));
  }

  @Test void summaryTable() {
    String t = SummaryTable.render("run vit", List.of(new SummaryTable.Row("test accuracy", "88.40%"), new SummaryTable.Row("time", "8:12")));
    assertEquals("""
        +------------------------+
        | run vit                |
        +---------------+--------+
        | test accuracy | 88.40% |
        | time          | 8:12   |
        +---------------+--------+
        """, t);
  }

  @Test void plotDrawsTheCurvesWhereTheDataIs() throws IOException {
    double[] x = {0, 10, 20, 30, 40}, loss = {2.0, 1.2, 0.9, 0.7, 0.6}, evalX = {20, 40}, evalLoss = {1.0, 0.8};
    List<CurvePlot.Series> left = List.of(new CurvePlot.Series("train loss", CurvePlot.TRAIN, x, loss),
        new CurvePlot.Series("eval loss", CurvePlot.EVAL, evalX, evalLoss));
    List<CurvePlot.Series> right = List.of(new CurvePlot.Series("eval accuracy", CurvePlot.EVAL, evalX, new double[] {0.8, 0.9}));
    Path png = tmp.resolve("curves.png");
    CurvePlot.write(png, "loss", left, "accuracy", right);
    BufferedImage img = ImageIO.read(png.toFile());
    assertEquals(CurvePlot.WIDTH, img.getWidth());
    assertEquals(CurvePlot.HEIGHT, img.getHeight());
    CurvePlot.Frame f = CurvePlot.frame(70, left);
    assertEquals(CurvePlot.TRAIN.getRGB(), img.getRGB(f.px(10), f.py(1.2)), "train point (10, 1.2)");
    assertEquals(CurvePlot.EVAL.getRGB(), img.getRGB(f.px(40), f.py(0.8)), "eval point (40, 0.8)");
    CurvePlot.Frame r = CurvePlot.frame(CurvePlot.WIDTH / 2 + 70, right);
    assertEquals(CurvePlot.EVAL.getRGB(), img.getRGB(r.px(20), r.py(0.8)), "accuracy point (20, 0.8)");
    assertEquals(0xFFFFFFFF, img.getRGB(2, 2), "background");
  }

  @Test void reporterWritesEverythingAndResumes() throws IOException {
    Path run = tmp.resolve("runs/demo");
    var out = new ByteArrayOutputStream();
    var console = new PrintStream(out, true, StandardCharsets.UTF_8);
    var progress = new ConsoleProgress(console, ConsoleProgress.Mode.OFF, System::nanoTime, 0);
    try (RunReporter r = new RunReporter(run, progress, console, new RunReporter.Options(true, true, 4))) {
      r.startEpoch(0, 1, 10, 0);
      for (int b = 1; b <= 10; b++) r.step(new StepMetrics(b, 0, 1.0 / b, 1e-3, 500, 0.1 * b), b);
      r.eval(new EvalMetrics(10, 0, 0.3, 0.9));
      r.endEpoch(RunReporter.describe(new EvalMetrics(10, 0, 0.3, 0.9)));
      String table = r.finish("demo", List.of(new SummaryTable.Row("test accuracy", "90.00%")));
      assertTrue(table.contains("| plot ") && table.contains("curves.png") && table.contains("tensorboard --logdir"), table);
      assertTrue(Files.size(r.eventFile().orElseThrow()) > 100);
    }
    // Steps 4 and 8 (every 4) and 10 (end of epoch), then the evaluation.
    assertEquals(4, Files.readAllLines(run.resolve(RunReporter.METRICS)).size());
    assertTrue(Files.size(run.resolve(RunReporter.PLOT)) > 1000);
    try (RunReporter again = new RunReporter(run, new ConsoleProgress(console, ConsoleProgress.Mode.OFF, System::nanoTime, 0), console,
        new RunReporter.Options(false, false, 4))) {
      assertEquals(3, again.history().steps().size(), "a resumed run starts with the earlier history");
    }
  }
}
