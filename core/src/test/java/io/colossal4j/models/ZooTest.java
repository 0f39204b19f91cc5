package io.colossal4j.models;

import static io.colossal4j.testing.GradCheck.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.models.resnet.ResNet;
import io.colossal4j.models.resnet.ResNetConfig;
import io.colossal4j.models.vit.ViTConfig;
import java.util.List;
import io.colossal4j.nn.ModuleContext;
import io.colossal4j.nn.Unit;
import io.colossal4j.nn.UnitModel;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.HashSet;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * The zoo: parameter names and counts equal timm's, and running a model's units in order equals its forward
 * exactly (bit for bit: the same ops in the same order), with every parameter owned by exactly one unit.
 */
class ZooTest {
  static final CpuBackend CPU = CpuBackend.create(2);

  @Test void parameterCountsMatchTimm() {
    // timm: vit_base_patch16_224 86,567,656; vit_huge_patch14_clip_336 632,456,680 (1000 classes)
    assertEquals(86_567_656L, ViTConfig.base16(1000).parameterCount());
    assertEquals(632_456_680L, ViTConfig.hugeClip336(1000).parameterCount());
    UnitModel r18 = Zoo.build(ModuleContext.of(CPU, 0), ModelSpec.of("resnet18", 1000));
    assertEquals(11_689_512L, r18.parameterCount());
  }

  @Test void vitFormulaMatchesBuiltModel() {
    for (String name : List.of("vit_tiny_28", "vit_mini_28", "vit_small_28", "vit_convstem_28")) {
      UnitModel m = Zoo.build(ModuleContext.of(CPU, 0), ModelSpec.of(name, 10));
      assertEquals(Zoo.entry(name).parameterCount(ModelSpec.of(name, 10)), m.parameterCount(), name);
    }
  }

  @Test void timmNames() {
    UnitModel vit = Zoo.build(ModuleContext.of(CPU, 0), ModelSpec.of("vit_tiny_28", 10));
    Set<String> names = vit.namedParameters().keySet();
    for (String n : new String[] {"cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias", "blocks.0.norm1.weight",
        "blocks.0.attn.qkv.weight", "blocks.0.attn.proj.bias", "blocks.3.mlp.fc2.weight", "norm.bias", "head.weight"})
      assertTrue(names.contains(n), n + " missing from " + names);
    UnitModel r = Zoo.build(ModuleContext.of(CPU, 0), ModelSpec.of("resnet18", 10));
    Set<String> rs = r.stateDict().keySet();
    for (String n : new String[] {"conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight", "layer2.0.downsample.0.weight",
        "layer2.0.downsample.1.num_batches_tracked", "fc.bias"})
      assertTrue(rs.contains(n), n + " missing");
  }

  @Test void unitsEqualForwardAndPartitionParameters() {
    checkUnits(Zoo.build(ModuleContext.of(CPU, 1), new ModelSpec("vit_tiny_28", 10, 0, 0, 0, 0)), images(2, 1, 28));
    checkUnits(Zoo.build(ModuleContext.of(CPU, 1), ModelSpec.of("vit_convstem_28", 10)), images(2, 1, 28));
    // a narrow ResNet (same code paths as resnet18/50, a fraction of the arithmetic)
    var narrow = new ResNetConfig(false, List.of(1, 1, 1, 1), List.of(8, 16, 32, 64), 8, 3, 10, false);
    checkUnits(new ResNet(ModuleContext.of(CPU, 1), narrow), images(2, 3, 32));
    var bottleneck = new ResNetConfig(true, List.of(1, 1, 1, 1), List.of(4, 8, 16, 32), 8, 3, 10, true);
    checkUnits(new ResNet(ModuleContext.of(CPU, 1), bottleneck), images(2, 3, 16));
    checkUnits(Zoo.build(ModuleContext.of(CPU, 1), ModelSpec.of("convnet_small", 10)), images(2, 1, 28));
    long[] ids = new Random(1).longs(2 * 16, 0, 256).toArray();
    checkUnits(Zoo.build(ModuleContext.of(CPU, 1), ModelSpec.of("gpt_small", 0)), Tensor.of(ids, Shape.of(2, 16), DType.I64, CPU));
  }

  private static Tensor images(int b, int c, int s) {
    double[] d = new Random(5).doubles((long) b * c * s * s, -1, 1).toArray();
    return Tensor.of(d, Shape.of(b, c, s, s), DType.F32, CPU);
  }

  private static void checkUnits(UnitModel m, Tensor x) {
    m.eval();
    double[] whole = m.forward(x).toDoubleArray();
    Tensor h = x;
    Set<String> owned = new HashSet<>();
    for (Unit u : m.units()) {
      h = u.module().forward(h);
      u.module().namedParameters().keySet().forEach(k -> assertTrue(owned.add(u.prefix() + k), "parameter " + u.prefix() + k + " in two units"));
    }
    assertClose(whole, h.toDoubleArray(), 0, 0, m.getClass().getSimpleName() + " units vs forward");
    assertEquals(m.namedParameters().keySet(), owned, "units own exactly the model's parameters");
  }
}
