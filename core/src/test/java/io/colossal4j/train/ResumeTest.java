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
 * A run stopped after a checkpoint and resumed reaches bit for bit the parameters of a run that never stopped:
 * model, optimizer state, schedule, dropout streams and loader position are all restored. Small ViT with
 * dropout and drop-path on synthetic data, 2 epochs of 4 steps, stopped (as by a preemption) after epoch 1 and
 * mid-epoch.
 */
class ResumeTest {
  @TempDir Path tmp;

  private RunConfig config(Path dir, String... extra) {
    List<String> sets = new ArrayList<>(List.of(
        "data.name=synthetic", "data.synthetic.train_size=32", "data.synthetic.test_size=16", "data.synthetic.shape=[1,28,28]",
        "data.num_workers=0", "model.name=vit_tiny_28", "model.dropout=0.1", "model.drop_path=0.1",
        "train.global_batch_size=8", "train.epochs=2", "train.eval_every=0", "logging.dir=" + dir, "logging.progress=off",
        "logging.tensorboard=false", "logging.plot=false", "schedule.warmup_steps=2"));
    sets.addAll(List.of(extra));
    return Configs.parse("name: resume-test\n", "test", sets);
  }

  private static Map<String, Tensor> train(RunConfig c) { return train(c, Long.MAX_VALUE); }

  private static Map<String, Tensor> train(RunConfig c, long stopAt) {
    var out = new PrintStream(new ByteArrayOutputStream());
    try (TrainJob job = new TrainJob(c, Map.of(), false, out)) {
      job.trainer().stopAt(stopAt);
      job.run();
      Map<String, Tensor> state = new java.util.LinkedHashMap<>();
      job.model().stateDict().forEach((k, v) -> state.put(k, Tensor.of(v.toFloatArray(), v.shape(), io.colossal4j.backend.cpu.CpuBackend.reference())));
      return state;
    }
  }

  @Test void resumedRunEqualsUninterruptedRun() throws Exception {
    Map<String, Tensor> straight = train(config(tmp.resolve("a")));
    // first half: stop after 1 epoch (checkpoint at its end), then resume from it for the second epoch
    train(config(tmp.resolve("b")), 4);
    Map<String, Tensor> resumed = train(config(tmp.resolve("b"), "checkpoint.resume=latest"));
    assertEquals(straight.keySet(), resumed.keySet());
    straight.forEach((k, v) -> assertArrayEquals(v.toFloatArray(), resumed.get(k).toFloatArray(), 0f, "parameter " + k));
    // stopped mid-epoch (the stop saves a checkpoint there): resumes mid-epoch just as exactly
    train(config(tmp.resolve("c")), 3);
    Map<String, Tensor> mid = train(config(tmp.resolve("c"), "checkpoint.resume=latest"));
    straight.forEach((k, v) -> assertArrayEquals(v.toFloatArray(), mid.get(k).toFloatArray(), 0f, "mid-epoch resume, parameter " + k));
    assertEquals(true, Files.isDirectory(tmp.resolve("b/resume-test/checkpoints")));
  }
}
