package io.colossal4j.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.colossal4j.tensor.Tensor;
import io.colossal4j.train.config.Configs;
import io.colossal4j.train.config.RunConfig;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The trainer reading each step's figures after the next step is queued (as it does on an accelerator) reports
 * the same steps with the same loss, learning rate and accuracy, in the same order relative to evaluations (its
 * metrics log, clocks left out), and trains the same parameters bit for bit, as reading them at once: forced on
 * the CPU, with an evaluation every 3 steps, a checkpoint every 2 (each saved after its step is reported) and 2
 * epochs of 4 steps.
 */
class LateReportTest {
  @TempDir Path tmp;

  private RunConfig config(Path dir) {
    return Configs.parse("name: late\n", "test", List.of(
        "data.name=synthetic", "data.synthetic.train_size=36", "data.synthetic.test_size=16", "data.synthetic.shape=[1,28,28]",
        "data.num_workers=0", "model.name=vit_tiny_28", "model.dropout=0.1", "train.global_batch_size=8", "train.epochs=2",
        "train.eval_every=3", "checkpoint.every=2", "logging.dir=" + dir, "logging.progress=off", "logging.tensorboard=false",
        "logging.plot=false", "logging.every=1", "schedule.warmup_steps=2"));
  }

  private record Run(List<String> events, Map<String, float[]> state) {}

  private static Run train(RunConfig c, Path dir, boolean late) throws Exception {
    try (TrainJob job = new TrainJob(c, Map.of(), false, new PrintStream(new ByteArrayOutputStream()))) {
      job.trainer().reportLate(late);
      job.run();
      Map<String, float[]> state = new java.util.LinkedHashMap<>();
      job.model().stateDict().forEach((k, v) -> state.put(k, v.toFloatArray()));
      List<String> events = new ArrayList<>();
      try (var lines = Files.walk(dir)) {
        Path log = lines.filter(p -> p.getFileName().toString().equals(io.colossal4j.train.metrics.RunReporter.METRICS)).findFirst().orElseThrow();
        // every event but its clock: time and throughput differ between runs
        for (String l : Files.readAllLines(log)) events.add(l.replaceAll("\"(time|wall_s|elapsed_s|samples_per_s|sps|seconds)\":[^,}]*,?", ""));
      }
      return new Run(events, state);
    }
  }

  @Test void lateReportsMatchImmediateOnes() throws Exception {
    Run now = train(config(tmp.resolve("now")), tmp.resolve("now"), false);
    Run late = train(config(tmp.resolve("late")), tmp.resolve("late"), true);
    assertEquals(now.events(), late.events());
    assertEquals(now.state().keySet(), late.state().keySet());
    now.state().forEach((k, v) -> assertArrayEquals(v, late.state().get(k), 0f, "parameter " + k));
    assertEquals(true, now.events().size() >= 10, "the log has every step and the evaluations: " + now.events());
  }
}
