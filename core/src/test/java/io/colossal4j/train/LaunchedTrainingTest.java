package io.colossal4j.train;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.colossal4j.cli.Main;
import io.colossal4j.train.metrics.MetricsLog;
import io.colossal4j.train.metrics.StepMetrics;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The real-process path: `colossal train` with parallel.data = 2 launches two rank JVMs through the launcher,
 * which rendezvous, shard the data and all-reduce gradients; their per-step (global) losses equal one process
 * accumulating two micro-batches of the same samples. f32 on the fast kernels, where only the order of sums
 * differs: 1e-5 relative.
 */
class LaunchedTrainingTest {
  @TempDir Path tmp;

  private int train(Path config, String dir, String... sets) {
    java.util.List<String> args = new java.util.ArrayList<>(List.of("train", config.toString(), "--set", "logging.dir=" + tmp.resolve(dir)));
    for (String s : sets) { args.add("--set"); args.add(s); }
    return Main.run(args.toArray(String[]::new));
  }

  @Test void twoLaunchedRanksEqualOneProcess() throws Exception {
    Path config = tmp.resolve("job.yaml");
    Files.writeString(config, """
        name: launched
        seed: 3
        model: {name: vit_mini_28}
        data: {name: synthetic, num_workers: 0, synthetic: {train_size: 64, test_size: 16, num_classes: 10, shape: [1, 28, 28]}}
        train: {global_batch_size: 16, epochs: 1, eval_every: 0}
        optimizer: {name: adamw, lr: 1.0e-3}
        schedule: {name: constant}
        logging: {every: 1, progress: off, tensorboard: false, plot: false}
        """);
    assertEquals(0, train(config, "dp2", "parallel.data=2", "device.threads=1"));
    assertEquals(0, train(config, "single", "parallel.data=1", "train.gradient_accumulation=2", "device.threads=1"));
    List<StepMetrics> dp = MetricsLog.read(tmp.resolve("dp2/launched/metrics.jsonl")).steps();
    List<StepMetrics> one = MetricsLog.read(tmp.resolve("single/launched/metrics.jsonl")).steps();
    assertEquals(4, one.size());
    assertEquals(one.size(), dp.size());
    for (int i = 0; i < one.size(); i++) assertEquals(one.get(i).loss(), dp.get(i).loss(), 1e-5 * Math.abs(one.get(i).loss()), "step " + (i + 1));
  }
}
