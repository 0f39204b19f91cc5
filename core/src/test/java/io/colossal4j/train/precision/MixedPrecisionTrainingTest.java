package io.colossal4j.train.precision;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.models.vit.ViTConfig;
import io.colossal4j.models.vit.VisionTransformer;
import io.colossal4j.nn.ModuleContext;
import io.colossal4j.nn.UnitModel;
import io.colossal4j.ops.Loss;
import io.colossal4j.optim.Adam;
import io.colossal4j.optim.LrSchedule;
import io.colossal4j.optim.ParamGroup;
import io.colossal4j.step.Batch;
import io.colossal4j.step.MicroBatchSchedule;
import io.colossal4j.step.StepHooks;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.train.Engine;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Mixed precision in the Engine on the CPU: a small ViT (f32 master weights) trained 4 steps under bf16
 * autocast and under f16 autocast with dynamic loss scaling follows the f32 run within the 16-bit types'
 * rounding, an f16 overflow skips the update and is reported with its step, and bad combinations are refused.
 */
class MixedPrecisionTrainingTest {
  static final int STEPS = 4, BATCH = 8;
  static final ViTConfig CFG = new ViTConfig(8, 4, 1, 5, 16, 2, 2, 2.0, true, false, ViTConfig.Pool.TOKEN, 0, 0, 1e-6);

  static List<Batch> batches(CpuBackend b) {
    Random r = new Random(7);
    List<Batch> out = new ArrayList<>();
    for (int s = 0; s < STEPS; s++)
      out.add(new Batch(Tensor.of(r.doubles(BATCH * 64L, -1, 1).toArray(), Shape.of(BATCH, 1, 8, 8), DType.F32, b),
          Tensor.of(r.longs(BATCH, 0, 5).toArray(), Shape.of(BATCH), DType.I64, b)));
    return out;
  }

  static Engine engine(UnitModel m) {
    return new Engine(m, Adam.adamW(ParamGroup.single(m.namedParameters(), 0.05)), (o, y) -> Loss.crossEntropy(o, y),
        new LrSchedule.Constant(1e-2), 2, 1.0, new StepHooks() {}, MicroBatchSchedule.SEQUENTIAL);
  }

  record Run(double[] losses, double[] firstWeight, List<Engine.StepResult> results) {}

  static Run train(MixedPrecision p) {
    CpuBackend b = CpuBackend.create(1);
    UnitModel m = new VisionTransformer(new ModuleContext(b, DType.F32, 3), CFG);
    Engine e = engine(m).withPrecision(p);
    List<Batch> data = batches(b);
    double[] losses = new double[STEPS];
    List<Engine.StepResult> results = new ArrayList<>();
    for (int s = 0; s < STEPS; s++) {
      results.add(e.trainStep(data.get(s)));
      losses[s] = results.getLast().loss();
    }
    return new Run(losses, m.parameters().getFirst().toDoubleArray(), results);
  }

  static double maxRelative(double[] a, double[] b) {
    double worst = 0;
    for (int i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / Math.max(1e-3, Math.abs(b[i])));
    return worst;
  }

  /**
   * bf16 keeps 8 significant bits (relative rounding 2^-9 = 0.2%) on every matmul operand and output; the
   * loss is a mean over the batch, so the roundings average out: through two blocks and four AdamW steps the
   * losses stay within 0.5% of f32 (measured 8e-5). They must also differ from f32: otherwise autocast did not run.
   */
  @Test void bf16AutocastFollowsF32() {
    Run f32 = train(MixedPrecision.full()), bf16 = train(MixedPrecision.bf16());
    double rel = maxRelative(bf16.losses(), f32.losses());
    assertTrue(rel < 0.005, "bf16 losses differ by " + rel + ": " + java.util.Arrays.toString(bf16.losses()) + " vs " + java.util.Arrays.toString(f32.losses()));
    assertTrue(rel > 0, "bf16 gave exactly the f32 losses: autocast was not applied");
  }

  /** f16 keeps 11 significant bits (2^-12 relative rounding, 8x finer than bf16): within 0.1% of f32 (measured 7e-6); the default scale 65536 overflows nothing here. */
  @Test void fp16WithLossScalingFollowsF32() {
    List<DynamicLossScaler.Outcome.Skipped> overflows = new ArrayList<>();
    Run f32 = train(MixedPrecision.full()), f16 = train(MixedPrecision.fp16(overflows::add));
    assertTrue(overflows.isEmpty(), "unexpected overflows: " + overflows);
    double rel = maxRelative(f16.losses(), f32.losses());
    assertTrue(rel < 0.001, "f16 losses differ by " + rel + ": " + java.util.Arrays.toString(f16.losses()) + " vs " + java.util.Arrays.toString(f32.losses()));
    for (Engine.StepResult r : f16.results()) assertFalse(r.skipped());
  }

  /** A scale of 2^40 overflows f16 gradients: the first steps are skipped, reported with their numbers, and nothing is updated. */
  @Test void anOverflowSkipsTheUpdateAndIsReported() {
    List<DynamicLossScaler.Outcome.Skipped> overflows = new ArrayList<>();
    var scaler = new DynamicLossScaler(new DynamicLossScaler.Config(Math.pow(2, 40), 2, 0.5, 2000), overflows::add);
    CpuBackend b = CpuBackend.create(1);
    UnitModel m = new VisionTransformer(new ModuleContext(b, DType.F32, 3), CFG);
    double[] before = m.parameters().getFirst().toDoubleArray();
    Engine e = engine(m).withPrecision(new MixedPrecision.Autocast16(DType.F16, scaler));
    Engine.StepResult r = e.trainStep(batches(b).getFirst());
    assertTrue(r.skipped());
    assertEquals(1, overflows.size());
    assertEquals(0, overflows.getFirst().step());
    assertEquals(Math.pow(2, 40), overflows.getFirst().scale());
    assertEquals(Math.pow(2, 39), scaler.scale());
    assertTrue(overflows.getFirst().describe().startsWith("step 0: gradient of "), overflows.getFirst().describe());
    assertArrayEquals(before, m.parameters().getFirst().toDoubleArray(), 0.0, "a skipped update changes no parameter");
    assertTrue(Double.isFinite(r.loss()) && Math.abs(r.loss() - Math.log(5)) < 1, "the reported loss is unscaled: " + r.loss());
    assertEquals(0, m.parameters().getFirst().grad().toDoubleArray()[0], "gradients are cleared after a skip");
  }

  @Test void fp16WithTensorOrPipelineParallelismIsRejectedWhenTheConfigIsRead() {
    for (String layout : List.of("parallel.tensor.size=2", "parallel.pipeline=2")) {
      var e = assertThrows(io.colossal4j.train.config.ConfigException.class,
          () -> io.colossal4j.train.config.Configs.parse("name: t\n", "test", List.of("train.precision=fp16", layout)));
      assertTrue(e.getMessage().startsWith("train.precision: fp16 with tensor or pipeline parallelism"), e.getMessage());
    }
    io.colossal4j.train.config.Configs.parse("name: t\n", "test", List.of("train.precision=bf16", "parallel.tensor.size=2"));
  }

  @Test void precisionNeedsF32MasterWeightsAndIsSetBeforeTheFirstStep() {
    CpuBackend b = CpuBackend.create(1);
    UnitModel half = new VisionTransformer(new ModuleContext(b, DType.BF16, 3), CFG);
    var e = assertThrows(IllegalArgumentException.class, () -> engine(half).withPrecision(MixedPrecision.bf16()));
    assertTrue(e.getMessage().contains("f32 master weights"), e.getMessage());
    UnitModel m = new VisionTransformer(new ModuleContext(b, DType.F32, 3), CFG);
    Engine started = engine(m);
    started.trainStep(batches(b).getFirst());
    assertThrows(IllegalStateException.class, () -> started.withPrecision(MixedPrecision.bf16()));
    assertInstanceOf(MixedPrecision.Full.class, started.precision());
  }
}
