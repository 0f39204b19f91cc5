package io.colossal4j.train;

import static io.colossal4j.testing.GradCheck.assertClose;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.data.LoaderPosition;
import io.colossal4j.distributed.DeviceMesh;
import io.colossal4j.distributed.MeshAxis;
import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.distributed.RankThreads;
import io.colossal4j.distributed.cpu.CpuDistributed;
import io.colossal4j.models.vit.ViTConfig;
import io.colossal4j.models.vit.VisionTransformer;
import io.colossal4j.nn.ModuleContext;
import io.colossal4j.nn.UnitModel;
import io.colossal4j.parallel.pipeline.Schedule;
import io.colossal4j.parallel.pipeline.SplitPolicy;
import io.colossal4j.step.Batch;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.MemoryCategory;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.train.checkpoint.Checkpoint;
import io.colossal4j.train.checkpoint.CheckpointException;
import io.colossal4j.train.checkpoint.CheckpointStore;
import io.colossal4j.train.checkpoint.Safetensors;
import io.colossal4j.train.checkpoint.TrainingState;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Checkpoints of dp × tp × pp layouts hold the single-device state, and resume into any layout. The small ViT of
 * {@link HybridEquivalenceTest} (f64, reference kernels, AdamW with binding clipping) trains {@link #SAVE_AT} steps
 * in one layout, world rank 0 saves through {@link CheckpointLayout} and {@link CheckpointStore}, and another
 * layout resumes for the remaining step. References: one process trained all steps (1e-9 relative, as the
 * equivalence test: f64, only summation orders differ), and for the same layout the uninterrupted run (exact:
 * gather and re-slice copy bits, and every rank computes what it would have computed).
 */
class LayoutCheckpointTest {
  static final int SAVE_AT = 2, STEPS = HybridEquivalenceTest.STEPS;
  @TempDir Path tmp;

  /** A layout: sizes, schedule (pp > 1). */
  record Mesh(int dp, int tp, int pp, Schedule schedule) {
    int world() { return dp * tp * pp; }

    static Mesh parse(String s) {   // e.g. "dp2 tp1 pp2 1f1b"
      String[] f = s.trim().split("\\s+");
      Schedule sch = f.length < 4 ? new Schedule.OneFOneB() : switch (f[3]) {
        case "gpipe" -> new Schedule.GPipe();
        case "interleaved" -> new Schedule.Interleaved(2);
        default -> new Schedule.OneFOneB();
      };
      return new Mesh(Integer.parseInt(f[0].substring(2)), Integer.parseInt(f[1].substring(2)), Integer.parseInt(f[2].substring(2)), sch);
    }
  }

  /** What a rank ends with: per-step losses of the steps it ran, the single-device parameters (gathered), the saved checkpoint. */
  record Result(double[] losses, Map<String, Tensor> params, Path saved) {}

  /**
   * One rank: builds the layout, resumes from {@code from} (if given), trains up to {@code until} steps, saving at
   * {@link #SAVE_AT} into {@code store} (if given); returns the final single-device parameters as world rank 0 gathers them.
   */
  static Result rank(Optional<ProcessGroup> world, Mesh mesh, ViTConfig cfg, Optional<Path> from, CheckpointStore store, int until) {
    CpuBackend b = CpuBackend.reference();
    UnitModel m = new VisionTransformer(new ModuleContext(b, DType.F64, 5), cfg);
    Optional<DeviceMesh> dm = world.map(w -> DeviceMesh.of(w, mesh.tp(), mesh.pp()));
    HybridPlan plan = HybridPlan.apply(m, dm, new HybridPlan.Options(mesh.schedule(), new SplitPolicy.Uniform(), 2048));
    Engine e = HybridEquivalenceTest.engine(plan.local(), HybridEquivalenceTest.MICRO, plan);
    CheckpointLayout layout = CheckpointLayout.of(m, plan.local(), dm);
    int first = 0;
    if (from.isPresent()) {
      Checkpoint c = CheckpointStore.load(from.get(), b);
      layout.load(c, e.optimizer(), c.state().scheduleStep(), "checkpoint " + from.get());
      e.resumeAt(c.state().step());
      first = (int) c.state().step();
    }
    int dp = dm.map(d -> d.size(MeshAxis.DP)).orElse(1), dpRank = dm.map(d -> d.coordinate(MeshAxis.DP)).orElse(0);
    List<Batch> data = HybridEquivalenceTest.data(b);
    double[] losses = new double[until - first];
    Path saved = null;
    for (int s = first; s < until; s++) {
      // every layout runs MICRO micro-batches per replica: the single process accumulates dp × MICRO of them
      losses[s - first] = e.trainStep(data.get(s).split(dp).get(dpRank)).loss();
      if (s + 1 == SAVE_AT && store != null) saved = save(layout, e, store);
    }
    Optional<CheckpointLayout.State> end = layout.gather(e.optimizer());
    return new Result(losses, end.map(CheckpointLayout.State::model).orElse(Map.of()), saved);
  }

  /** What the trainer does: gather, the writer saves, everyone agrees. */
  static Path save(CheckpointLayout layout, Engine e, CheckpointStore store) {
    Optional<CheckpointLayout.State> s = layout.gather(e.optimizer());
    Path p = s.map(st -> store.save(new Checkpoint(st.model(), st.optimizer(),
        new TrainingState("vit", e.stepsRun(), e.optimizer().steps(), LoaderPosition.start(), st.rngs(), Map.of())))).orElse(null);
    layout.agree(true, e.stepsRun());
    return p;
  }

  /** Runs every rank of {@code mesh} (one process when it has one rank); returns world rank 0's result. */
  static Result run(Mesh mesh, ViTConfig cfg, Optional<Path> from, CheckpointStore store, int until) {
    if (mesh.world() == 1) return rank(Optional.empty(), mesh, cfg, from, store, until);
    List<ProcessGroup> world = CpuDistributed.threads(mesh.world());
    try {
      return RankThreads.run(world, 120, g -> rank(Optional.of(g), mesh, cfg, from, store, until)).getFirst();
    } finally {
      world.forEach(ProcessGroup::close);
    }
  }

  static void assertParamsClose(Map<String, Tensor> ref, Map<String, Tensor> got, double rtol, String what) {
    assertEquals(ref.keySet(), got.keySet(), what + ": names");
    ref.forEach((k, v) -> {
      assertEquals(v.shape(), got.get(k).shape(), what + ": shape of " + k);
      assertClose(v.toDoubleArray(), got.get(k).toDoubleArray(), rtol == 0 ? 0 : 1e-12, rtol, what + ": " + k);
    });
  }

  @ParameterizedTest(name = "{0} -> {1}")
  @CsvSource({"dp1 tp2 pp1, dp1 tp1 pp1", "dp1 tp1 pp1, dp1 tp2 pp1", "dp1 tp1 pp2 1f1b, dp1 tp2 pp1", "dp1 tp2 pp2 1f1b, dp1 tp1 pp1",
      "dp2 tp2 pp1, dp1 tp1 pp2 interleaved", "dp1 tp1 pp2 gpipe, dp2 tp1 pp2 1f1b"})
  void resumesIntoAnotherLayout(String saveLayout, String resumeLayout) {
    Result single = run(Mesh.parse("dp1 tp1 pp1"), HybridEquivalenceTest.CFG, Optional.empty(), null, STEPS);
    CheckpointStore store = new CheckpointStore(tmp.resolve("ckpt"), 2);
    Path saved = run(Mesh.parse(saveLayout), HybridEquivalenceTest.CFG, Optional.empty(), store, SAVE_AT).saved();
    Result resumed = run(Mesh.parse(resumeLayout), HybridEquivalenceTest.CFG, Optional.of(saved), null, STEPS);
    assertClose(new double[] {single.losses()[STEPS - 1]}, resumed.losses(), 0, 1e-9, "loss of the step after the resume");
    assertParamsClose(single.params(), resumed.params(), 1e-9, saveLayout + " -> " + resumeLayout);
  }

  /** tp2 saved at step 2 and resumed on tp2 ends exactly where the uninterrupted tp2 run ends. */
  @Test void sameLayoutResumeIsExact() {
    Mesh tp2 = Mesh.parse("dp1 tp2 pp1");
    Result straight = run(tp2, HybridEquivalenceTest.CFG, Optional.empty(), null, STEPS);
    Path saved = run(tp2, HybridEquivalenceTest.CFG, Optional.empty(), new CheckpointStore(tmp.resolve("ckpt"), 1), SAVE_AT).saved();
    Result resumed = run(tp2, HybridEquivalenceTest.CFG, Optional.of(saved), null, STEPS);
    assertArrayEquals(new double[] {straight.losses()[STEPS - 1]}, resumed.losses(), 0);
    assertParamsClose(straight.params(), resumed.params(), 0, "tp2 resumed vs uninterrupted");
  }

  /**
   * The file a tp2 × pp2 run writes is the single-device state dict: the names, order and shapes of one process's
   * model and optimizer state, values within 1e-9 relative (f64; only summation orders differ).
   */
  @Test void savedFileIsTheSingleDeviceStateDict() {
    Path single = run(Mesh.parse("dp1 tp1 pp1"), HybridEquivalenceTest.CFG, Optional.empty(), new CheckpointStore(tmp.resolve("one"), 1), SAVE_AT).saved();
    Path hybrid = run(Mesh.parse("dp1 tp2 pp2 1f1b"), HybridEquivalenceTest.CFG, Optional.empty(), new CheckpointStore(tmp.resolve("hybrid"), 1), SAVE_AT).saved();
    CpuBackend b = CpuBackend.reference();
    for (String file : List.of("model.safetensors", "optimizer.safetensors")) {
      Map<String, Tensor> ref = Safetensors.read(single.resolve(file), b, MemoryCategory.PARAMETER).tensors();
      Map<String, Tensor> got = Safetensors.read(hybrid.resolve(file), b, MemoryCategory.PARAMETER).tensors();
      assertEquals(List.copyOf(ref.keySet()), List.copyOf(got.keySet()), file + ": names in order");
      assertParamsClose(ref, got, 1e-9, file);
    }
    Map<String, Tensor> live = new VisionTransformer(new ModuleContext(b, DType.F64, 5), HybridEquivalenceTest.CFG).stateDict();
    assertEquals(List.copyOf(live.keySet()), List.copyOf(Safetensors.read(hybrid.resolve("model.safetensors"), b, MemoryCategory.PARAMETER).tensors().keySet()));
  }

  /** A checkpoint of a deeper, wider ViT is rejected on tp2 before anything is copied, naming the parameters that differ. */
  @Test void checkpointOfAnotherShapeIsRejectedNamingParameters() {
    ViTConfig other = new ViTConfig(8, 4, 1, 5, 24, 3, 2, 2.0, true, false, ViTConfig.Pool.TOKEN, 0, 0, 1e-6);
    Path saved = run(Mesh.parse("dp1 tp1 pp1"), other, Optional.empty(), new CheckpointStore(tmp.resolve("other"), 1), SAVE_AT).saved();
    CheckpointException e = assertThrows(CheckpointException.class,
        () -> run(Mesh.parse("dp1 tp2 pp1"), HybridEquivalenceTest.CFG, Optional.of(saved), null, STEPS));
    String m = e.getMessage();
    assertTrue(m.contains("does not match this model"), m);
    assertTrue(m.contains("in the checkpoint but not in the model: blocks.2."), m);
    assertTrue(m.contains("blocks.0.attn.qkv.weight (saved F64[72, 24], model F64[48, 16])"), m);
  }
}
