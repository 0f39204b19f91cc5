package io.colossal4j.parallel.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.distributed.cpu.CpuDistributed;
import io.colossal4j.models.gpt.Gpt;
import io.colossal4j.models.gpt.GptConfig;
import io.colossal4j.models.gpt.parallel.GptTensorPlan;
import io.colossal4j.models.vit.ViTConfig;
import io.colossal4j.models.vit.VisionTransformer;
import io.colossal4j.models.vit.parallel.VitTensorPlan;
import io.colossal4j.nn.ModuleContext;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Plans: bad input rejected with the layer, the dimension and tp; application; state-dict conversion between layouts. */
class TensorPlanTest {
  static final GptConfig GPT = new GptConfig(32, 8, 2, 4, 16, 0.0, true);

  private static VisionTransformer vit(CpuBackend cpu, int heads, double mlpRatio) {
    return new VisionTransformer(ModuleContext.of(cpu, 1), new ViTConfig(8, 2, 1, 4, 12, 2, heads, mlpRatio, true, false, ViTConfig.Pool.TOKEN, 0, 0, 1e-6));
  }

  private static String rejection(Runnable build) {
    return assertThrows(IllegalArgumentException.class, build::run).getMessage();
  }

  @Test void headsNotDivisibleByTpAreNamed() {
    try (CpuBackend cpu = CpuBackend.reference()) {
      String m = rejection(() -> VitTensorPlan.plan(vit(cpu, 3, 2.0), 2));
      assertTrue(m.startsWith("tensor plan for tp = 2 is invalid (2 problems):"), m);
      assertTrue(m.contains("blocks.0.attn.qkv: heads = 3 is not divisible by tp = 2"), m);
      assertTrue(m.contains("blocks.1.attn.qkv: heads = 3 is not divisible by tp = 2"), m);
    }
  }

  /** width 12, MLP ratio 2.5: hidden 30, not divisible by tp = 4 (heads 4 are); fc1's out and fc2's in are named. */
  @Test void hiddenSizeNotDivisibleByTpIsNamed() {
    try (CpuBackend cpu = CpuBackend.reference()) {
      String m = rejection(() -> VitTensorPlan.plan(vit(cpu, 4, 2.5), 4));
      assertTrue(m.contains("blocks.0.mlp.fc1: out features = 30 is not divisible by tp = 4"), m);
      assertTrue(m.contains("blocks.1.mlp.fc2: in features = 30 is not divisible by tp = 4"), m);
      assertTrue(m.contains("(4 problems)"), m);
    }
  }

  /** GPT with a vocabulary of 30 at tp = 4: the embedding and the LM head are named as in the state dict. */
  @Test void vocabularyNotDivisibleByTpIsNamed() {
    try (CpuBackend cpu = CpuBackend.reference()) {
      var gpt = new Gpt(ModuleContext.of(cpu, 1), new GptConfig(30, 8, 1, 4, 16, 0.0, true));
      String m = rejection(() -> GptTensorPlan.plan(gpt, 4));
      assertTrue(m.contains("transformer.wte: vocabulary size = 30 is not divisible by tp = 4"), m);
      assertTrue(m.contains("lm_head: out features = 30 is not divisible by tp = 4"), m);
    }
  }

  @Test void layerPlannedTwiceAndOtherMisuseAreRejected() {
    try (CpuBackend cpu = CpuBackend.reference()) {
      var model = vit(cpu, 4, 2.0);
      var b = model.blocks().getFirst();
      String twice = rejection(() -> TensorPlan.builder(model, 2).columnwise(b.mlp().fc1()).rowwise(b.mlp().fc1()).build());
      assertTrue(twice.contains("blocks.0.mlp.fc1: planned twice (columnwise, then rowwise)"), twice);
      String foreign = rejection(() -> TensorPlan.builder(model, 2).columnwise(vit(cpu, 4, 2.0).blocks().getFirst().mlp().fc1()));
      assertTrue(foreign.contains("is not a layer of the model this plan is built for"), foreign);
      assertTrue(rejection(() -> TensorPlan.builder(model, 0)).contains("got tp = 0"));
      var plan = VitTensorPlan.plan(model, 2);
      try (var one = CpuDistributed.threads(1).getFirst()) {
        assertEquals("plan is for tp = 2 but group world has 1 ranks", rejection(() -> plan.apply(model, one)));
      }
    }
  }

  /** Applying replaces exactly the planned layers, keeps the dotted names, and a second application is refused. */
  @Test void applyReplacesPlannedLayersUnderTheSameNames() {
    var names = TpTesting.ranks(2, CpuBackend::reference, (tp, cpu) -> {
      var gpt = new Gpt(new ModuleContext(cpu, DType.F64, 3), GPT);
      var before = gpt.namedParameters().keySet();
      var plan = GptTensorPlan.plan(gpt, 2);
      assertEquals(1 + 4 * GPT.nLayer() + 1, plan.entries().size());
      GptTensorPlan.parallelize(gpt, tp);
      assertEquals(List.copyOf(before), List.copyOf(gpt.namedParameters().keySet()));
      assertInstanceOf(VocabParallelEmbedding.class, gpt.namedModules().get("transformer.embed.wte"));
      assertInstanceOf(ColumnParallelLinear.class, gpt.units().getLast().module(), "the lm_head unit follows the replacement");
      assertEquals(Shape.of(24, 16), gpt.namedParameters().get("transformer.h.0.attn.c_attn.weight").shape());
      assertEquals(Shape.of(16, 32), gpt.namedParameters().get("transformer.h.1.mlp.c_proj.weight").shape());
      var s = assertThrows(IllegalStateException.class, () -> plan.apply(gpt, tp)).getMessage();
      assertTrue(s.contains("transformer.wte of the plan is not in this model"), s);
      try (var one = CpuDistributed.threads(1).getFirst()) {
        var g = assertThrows(IllegalArgumentException.class, () -> TensorParallelState.gradSquaredNorm(one, gpt)).getMessage();
        assertEquals("layer transformer.wte is sharded over 2 ranks (group world) but tp group world has 1", g);
      }
      return TensorParallelState.placements(gpt);
    });
    var p = names.getFirst();
    assertEquals(new Placement.Shard(0, 3), p.get("transformer.h.0.attn.c_attn.weight"));
    assertEquals(new Placement.Shard(0, 3), p.get("transformer.h.0.attn.c_attn.bias"));
    assertEquals(new Placement.Shard(1, 1), p.get("transformer.h.0.attn.c_proj.weight"));
    assertEquals(new Placement.Replicate(), p.get("transformer.h.0.attn.c_proj.bias"));
    assertEquals(new Placement.Shard(0, 1), p.get("transformer.wte.weight"));
    assertEquals(new Placement.Replicate(), p.get("transformer.wpe.weight"));
    assertEquals(new Placement.Shard(0, 1), p.get("lm_head.weight"));
  }

  /**
   * Layout conversion: a tp=2 model gathers to the single model's state dict exactly (shards are copies);
   * a full state dict (here: perturbed) loaded into tp=4 ranks gathers back to itself, and their logits,
   * gathered, equal a single model's loaded from the same dict (f64 reference, 1e-12: only additions reorder).
   */
  @Test void stateDictsConvertBetweenLayouts() {
    Map<String, double[]> single = new LinkedHashMap<>();
    Map<String, double[]> perturbed = new LinkedHashMap<>();
    double[] logits;
    try (CpuBackend cpu = CpuBackend.reference()) {
      var gpt = new Gpt(new ModuleContext(cpu, DType.F64, 3), GPT);
      Random rnd = new Random(9);
      gpt.stateDict().forEach((k, v) -> {
        single.put(k, v.toDoubleArray());
        double[] d = v.toDoubleArray();
        for (int i = 0; i < d.length; i++) d[i] += 0.1 * rnd.nextGaussian();
        perturbed.put(k, d);
      });
      gpt.loadStateDict(tensors(perturbed, gpt.stateDict(), cpu), true);
      logits = gpt.eval().forward(ids(cpu)).toDoubleArray();
    }
    var gathered = TpTesting.ranks(2, CpuBackend::reference, (tp, cpu) -> {
      var gpt = GptTensorPlan.parallelize(new Gpt(new ModuleContext(cpu, DType.F64, 3), GPT), tp);
      return TpTesting.host(TensorParallelState.gather(gpt, tp));
    });
    for (var g : gathered) single.forEach((k, v) -> assertArrayEquals(v, g.get(k), k));
    var resumed = TpTesting.ranks(4, CpuBackend::reference, (tp, cpu) -> {
      var gpt = GptTensorPlan.parallelize(new Gpt(new ModuleContext(cpu, DType.F64, 99), GPT), tp);
      var fullShapes = TensorParallelState.gather(gpt, tp);
      TensorParallelState.load(gpt, tensors(perturbed, fullShapes, cpu), tp);
      Tensor local = gpt.eval().forward(ids(cpu));
      return new Resumed(TpTesting.host(TensorParallelState.gather(gpt, tp)), TpComm.gatherFromRegion(local, tp).toDoubleArray());
    });
    for (Resumed r : resumed) {
      perturbed.forEach((k, v) -> assertArrayEquals(v, r.state().get(k), k));
      io.colossal4j.testing.GradCheck.assertClose(logits, r.logits(), 1e-12, 1e-12, "logits after resuming at tp=4");
    }
  }

  record Resumed(Map<String, double[]> state, double[] logits) {}

  @Test void loadingAMismatchedStateDictNamesEveryProblem() {
    var messages = TpTesting.ranks(2, CpuBackend::reference, (tp, cpu) -> {
      var gpt = GptTensorPlan.parallelize(new Gpt(new ModuleContext(cpu, DType.F64, 3), GPT), tp);
      var full = new LinkedHashMap<>(TensorParallelState.gather(gpt, tp));
      full.put("lm_head.weight", Tensor.zeros(Shape.of(16, 16), DType.F64, cpu));
      full.remove("transformer.wpe.weight");
      full.put("extra", Tensor.zeros(Shape.of(1), DType.F64, cpu));
      return assertThrows(TensorException.class, () -> TensorParallelState.load(gpt, full, tp)).getMessage();
    });
    String m = messages.getFirst();
    assertTrue(m.contains("(3 problems)"), m);
    assertTrue(m.contains("shape of lm_head.weight: state dict [16, 16], single-device model [32, 16]"), m);
    assertTrue(m.contains("missing: transformer.wpe.weight [8, 16]"), m);
    assertTrue(m.contains("unexpected: extra"), m);
  }

  private static Tensor ids(CpuBackend cpu) {
    return Tensor.of(new Random(4).longs(2 * 8, 0, 32).toArray(), Shape.of(2, 8), DType.I64, cpu);
  }

  private static Map<String, Tensor> tensors(Map<String, double[]> values, Map<String, Tensor> shapes, CpuBackend cpu) {
    Map<String, Tensor> out = new LinkedHashMap<>();
    values.forEach((k, v) -> out.put(k, Tensor.of(v, shapes.get(k).shape(), DType.F64, cpu)));
    return out;
  }
}
