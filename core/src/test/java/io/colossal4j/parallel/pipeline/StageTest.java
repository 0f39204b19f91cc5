package io.colossal4j.parallel.pipeline;

import static io.colossal4j.testing.GradCheck.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.models.ModelSpec;
import io.colossal4j.models.Zoo;
import io.colossal4j.models.resnet.ResNet;
import io.colossal4j.models.resnet.ResNetConfig;
import io.colossal4j.nn.ModuleContext;
import io.colossal4j.nn.UnitModel;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/** Stages keep the model's names, own exactly their units' state, and compose to the model's forward bit for bit. */
class StageTest {
  static final CpuBackend CPU = CpuBackend.create(1);

  @AfterAll static void close() { CPU.close(); }

  @Test void stagesPartitionTheStateDictUnderTheModelsNames() {
    for (UnitModel m : List.of(Zoo.build(ModuleContext.of(CPU, 0), ModelSpec.of("vit_tiny_28", 10)),
        Zoo.build(ModuleContext.of(CPU, 0), ModelSpec.of("gpt_small", 0)),
        new ResNet(ModuleContext.of(CPU, 0), new ResNetConfig(false, List.of(1, 1, 1, 1), List.of(4, 8, 8, 16), 4, 3, 10, true)))) {
      for (int p : new int[] {2, 3}) {
        Split split = SplitPolicy.split(new SplitPolicy.Uniform(), m.units(), 2 * p);
        Map<String, Tensor> union = new HashMap<>();
        for (int r = 0; r < p; r++)
          Stage.of(m, split, p, r).stateDict().forEach((k, t) -> assertTrue(union.put(k, t) == null, k + " in two stages"));
        Map<String, Tensor> whole = m.stateDict();
        assertEquals(whole.keySet(), union.keySet(), m.getClass().getSimpleName() + " p=" + p);
        whole.forEach((k, t) -> assertSame(t, union.get(k), k + " is the model's own tensor, not a copy"));
      }
    }
  }

  @Test void namesOfTopLevelAndNestedUnits() {
    UnitModel gpt = Zoo.build(ModuleContext.of(CPU, 0), ModelSpec.of("gpt_small", 0));
    Split split = SplitPolicy.split(new SplitPolicy.Customized(List.of("transformer.h.2")), gpt.units(), 2);
    var first = Stage.of(gpt, split, 2, 0).namedParameters().keySet();
    var second = Stage.of(gpt, split, 2, 1).namedParameters().keySet();
    assertTrue(first.contains("transformer.wte.weight") && first.contains("transformer.h.1.attn.c_attn.weight"), first.toString());
    assertTrue(second.contains("transformer.h.2.ln_1.weight") && second.contains("transformer.ln_f.weight") && second.contains("lm_head.weight"),
        second.toString());
    UnitModel vit = Zoo.build(ModuleContext.of(CPU, 0), ModelSpec.of("vit_tiny_28", 10));
    var vitFirst = Stage.of(vit, SplitPolicy.split(new SplitPolicy.Uniform(), vit.units(), 2), 2, 0).namedParameters().keySet();
    assertTrue(vitFirst.contains("cls_token") && vitFirst.contains("pos_embed") && vitFirst.contains("patch_embed.proj.weight"), vitFirst.toString());
  }

  @Test void interleavedChunksAreRoundRobinAndComposeToTheForward() {
    UnitModel vit = Zoo.build(ModuleContext.of(CPU, 1), ModelSpec.of("vit_tiny_28", 10));
    vit.eval();
    Split split = SplitPolicy.split(new SplitPolicy.Uniform(), vit.units(), 4);
    Stage s0 = Stage.of(vit, split, 2, 0), s1 = Stage.of(vit, split, 2, 1);
    assertEquals(split.unitsOf(0), s0.units(0).stream().map(u -> u.name()).toList());
    assertEquals(split.unitsOf(2), s0.units(1).stream().map(u -> u.name()).toList());
    assertEquals(split.unitsOf(1), s1.units(0).stream().map(u -> u.name()).toList());
    assertEquals(split.unitsOf(3), s1.units(1).stream().map(u -> u.name()).toList());
    Tensor x = Tensor.of(new Random(2).doubles(2 * 28 * 28, -1, 1).toArray(), Shape.of(2, 1, 28, 28), DType.F32, CPU);
    Tensor h = s1.forward(1, s0.forward(1, s1.forward(0, s0.forward(0, x))));
    // the same kernels on the same tensors in the same order: exactly equal
    assertClose(vit.forward(x).toDoubleArray(), h.toDoubleArray(), 0, 0, "chunks in virtual-stage order vs forward");
    var e = assertThrows(IllegalStateException.class, () -> s0.forward(x));
    assertTrue(e.getMessage().startsWith("stage 0 holds 2 chunks"), e.getMessage());
  }
}
