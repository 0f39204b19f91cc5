package io.colossal4j.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.distributed.RankThreads;
import io.colossal4j.distributed.cpu.CpuDistributed;
import io.colossal4j.models.ModelSpec;
import io.colossal4j.models.Zoo;
import io.colossal4j.nn.ModuleContext;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.MemoryCategory;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.train.checkpoint.Safetensors;
import io.colossal4j.train.config.Configs;
import io.colossal4j.train.config.RunConfig;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The trainer's checkpoints of a tp2 × pp2 run (4 in-JVM ranks, dropout and drop-path on, so every stage's random
 * streams matter): one file per checkpoint holding the single-device state dict, written by world rank 0; a run
 * stopped mid-epoch and resumed ends with exactly the bits of the run that never stopped (same layout: the
 * gather and re-slice copy bits, the streams are restored); and the checkpoint resumes on one process.
 */
class LayoutResumeTest {
  @TempDir Path tmp;

  private RunConfig config(Path dir, String... extra) {
    List<String> sets = new ArrayList<>(List.of(
        "data.name=synthetic", "data.synthetic.train_size=32", "data.synthetic.test_size=16", "data.synthetic.shape=[1,28,28]",
        "data.num_workers=0", "model.name=vit_mini_28", "model.dropout=0.1", "model.drop_path=0.1", "device.threads=1",
        "train.global_batch_size=8", "train.epochs=1", "train.eval_every=0", "logging.dir=" + dir, "logging.progress=off",
        "logging.tensorboard=false", "logging.plot=false", "schedule.warmup_steps=2", "parallel.num_micro_batches=2", "checkpoint.keep=10"));
    sets.addAll(List.of(extra));
    return Configs.parse("name: layout-resume\n", "test", sets);
  }

  /** Trains the config on {@code ranks} in-JVM ranks (one process when 1), stopping after {@code stopAt} steps. */
  private static void train(RunConfig c, int ranks, long stopAt) {
    var out = new PrintStream(new ByteArrayOutputStream());
    if (ranks == 1) {
      try (TrainJob job = new TrainJob(c, Map.of(), false, out)) {
        job.trainer().stopAt(stopAt);
        job.run();
      }
      return;
    }
    List<ProcessGroup> world = CpuDistributed.threads(ranks);
    try {
      RankThreads.run(world, 300, g -> {
        try (TrainJob job = new TrainJob(c, Optional.of(g), Map.of(), false, out)) {
          job.trainer().stopAt(stopAt);
          return job.run();
        }
      });
    } finally {
      world.forEach(ProcessGroup::close);
    }
  }

  /**
   * A save that fails on the writer (its checkpoint folder cannot be created) ends every rank with an error naming
   * the cause there and the writer elsewhere, instead of leaving the others waiting in the next collective.
   */
  @Test void failedSaveEndsEveryRank() throws Exception {
    Path blocker = Files.writeString(tmp.resolve("not-a-folder"), "x");
    RunConfig c = config(tmp.resolve("d"), "parallel.tensor.size=2", "checkpoint.dir=" + blocker.resolve("ckpt"));
    List<ProcessGroup> world = CpuDistributed.threads(2);
    var out = new PrintStream(new ByteArrayOutputStream());
    try (var pool = java.util.concurrent.Executors.newFixedThreadPool(2)) {
      List<java.util.concurrent.Future<?>> ranks = new ArrayList<>();
      for (ProcessGroup g : world)
        ranks.add(pool.submit(() -> {
          try (TrainJob job = new TrainJob(c, Optional.of(g), Map.of(), false, out)) {
            return job.run();
          }
        }));
      List<String> messages = new ArrayList<>();
      for (var f : ranks) {
        var e = org.junit.jupiter.api.Assertions.assertThrows(java.util.concurrent.ExecutionException.class, () -> f.get(120, java.util.concurrent.TimeUnit.SECONDS));
        messages.add(e.getCause().getMessage());
      }
      assertTrue(messages.get(0).contains("could not save checkpoint"), messages.get(0));
      assertTrue(messages.get(1).contains("world rank 0 could not save the checkpoint of step 4"), messages.get(1));
    } finally {
      world.forEach(ProcessGroup::close);
    }
  }

  private static Map<String, Tensor> read(Path checkpoint, String file) {
    return Safetensors.read(checkpoint.resolve(file), CpuBackend.reference(), MemoryCategory.PARAMETER).tensors();
  }

  private static Path checkpoint(Path dir, long step) { return dir.resolve("layout-resume/checkpoints/step-%09d".formatted(step)); }

  @Test void hybridCheckpointIsOneSingleDeviceFileAndResumesExactly() throws Exception {
    String[] hybrid = {"parallel.tensor.size=2", "parallel.pipeline=2"};
    train(config(tmp.resolve("a"), hybrid), 4, Long.MAX_VALUE);
    train(config(tmp.resolve("b"), hybrid), 4, 2);
    Path mid = checkpoint(tmp.resolve("b"), 2);
    // the file is the single-device state dict: the plain model's names, order and shapes
    var plainModel = Zoo.build(new ModuleContext(CpuBackend.reference(), DType.F32, 0), new ModelSpec("vit_mini_28", 10, 0, 0, 0.1, 0.1));
    Map<String, Tensor> plain = plainModel.stateDict();
    Map<String, Tensor> saved = read(mid, "model.safetensors");
    assertEquals(List.copyOf(plain.keySet()), List.copyOf(saved.keySet()));
    plain.forEach((k, v) -> assertEquals(v.shape(), saved.get(k).shape(), k));
    try (var files = Files.list(mid)) {
      assertEquals(List.of("model.safetensors", "optimizer.safetensors", "state.json"), files.map(p -> p.getFileName().toString()).sorted().toList());
    }
    String state = Files.readString(mid.resolve("state.json"));
    int streams = plainModel.rngs().size();
    assertTrue(streams > 4, "dropout and drop-path streams in every block: " + streams);
    for (int i = 0; i < streams; i++) assertTrue(state.contains("\"model." + i + "\""), "both stages' random streams are saved: model." + i + " in " + state);
    train(config(tmp.resolve("b"), "parallel.tensor.size=2", "parallel.pipeline=2", "checkpoint.resume=latest"), 4, Long.MAX_VALUE);
    for (String file : List.of("model.safetensors", "optimizer.safetensors")) {
      Map<String, Tensor> straight = read(checkpoint(tmp.resolve("a"), 4), file), resumed = read(checkpoint(tmp.resolve("b"), 4), file);
      assertEquals(straight.keySet(), resumed.keySet(), file);
      straight.forEach((k, v) -> assertArrayEquals(v.toFloatArray(), resumed.get(k).toFloatArray(), 0f, file + ": " + k));
    }
    // the same checkpoint resumes on one process (tp1, pp1) and trains on to the end
    train(config(tmp.resolve("c"), "checkpoint.resume=" + mid), 1, Long.MAX_VALUE);
    assertEquals(plain.keySet(), read(checkpoint(tmp.resolve("c"), 4), "model.safetensors").keySet());
  }
}
