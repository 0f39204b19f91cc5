package io.colossal4j.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.tensor.Tensor;
import io.colossal4j.train.config.Configs;
import io.colossal4j.train.config.RunConfig;
import io.colossal4j.train.precision.DynamicLossScaler;
import io.colossal4j.train.precision.MixedPrecision;
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
 * {@code train.precision} reaches the engine from the config, and an f16 run keeps its loss scaler in the
 * checkpoint: stopped and resumed, it reaches bit for bit the parameters of the run that never stopped.
 * (Small: 16-bit types take the CPU's scalar reference kernels, several times slower than f32.)
 */
class PrecisionResumeTest {
  @TempDir Path tmp;

  private RunConfig config(Path dir, String... extra) {
    List<String> sets = new ArrayList<>(List.of(
        "data.name=synthetic", "data.synthetic.train_size=24", "data.synthetic.test_size=8", "data.synthetic.shape=[1,28,28]",
        "data.num_workers=0", "model.name=vit_tiny_28", "train.global_batch_size=8", "train.epochs=1", "train.eval_every=0",
        "train.precision=fp16", "logging.dir=" + dir, "logging.progress=off", "logging.tensorboard=false", "logging.plot=false"));
    sets.addAll(List.of(extra));
    return Configs.parse("name: fp16-resume\n", "test", sets);
  }

  private record Result(Map<String, float[]> params, double scale) {}

  private static Result train(RunConfig c, long stopAt) {
    var out = new PrintStream(new ByteArrayOutputStream());
    try (TrainJob job = new TrainJob(c, Map.of(), false, out)) {
      assertTrue(job.trainer().engine().precision() instanceof MixedPrecision.Autocast16(var d, DynamicLossScaler s) && s != null,
          "train.precision=fp16 gives an f16 policy with a loss scaler");
      job.trainer().stopAt(stopAt);
      job.run();
      Map<String, float[]> state = new java.util.LinkedHashMap<>();
      job.model().stateDict().forEach((k, v) -> state.put(k, v.toFloatArray()));
      return new Result(state, job.trainer().engine().precision().lossScale());
    }
  }

  @Test void anF16RunResumesBitForBitWithItsLossScale() throws Exception {
    Result straight = train(config(tmp.resolve("a")), Long.MAX_VALUE);
    train(config(tmp.resolve("b")), 1);
    String state = Files.readString(tmp.resolve("b/fp16-resume/checkpoints/step-000000001/state.json"));
    assertTrue(state.contains("\"loss_scale\"") && state.contains("\"loss_scale_good_steps\""), state);
    Result resumed = train(config(tmp.resolve("b"), "checkpoint.resume=latest"), Long.MAX_VALUE);
    assertEquals(straight.scale(), resumed.scale());
    straight.params().forEach((k, v) -> assertArrayEquals(v, resumed.params().get(k), 0f, "parameter " + k));
  }
}
