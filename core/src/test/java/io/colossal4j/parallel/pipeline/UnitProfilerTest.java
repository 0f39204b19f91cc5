package io.colossal4j.parallel.pipeline;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
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
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The profiler measures every unit, counts activations by the storages the graph holds, and leaves the model as it was. */
class UnitProfilerTest {
  @Test void profilesEveryUnitAndRestoresTheModel() {
    try (CpuBackend cpu = CpuBackend.create(1)) {
      UnitModel m = new ResNet(ModuleContext.of(cpu, 0), new ResNetConfig(false, List.of(1, 1, 1, 1), List.of(4, 8, 8, 16), 4, 3, 10, true));
      Map<String, double[]> before = new LinkedHashMap<>();
      m.stateDict().forEach((k, t) -> before.put(k, t.toDoubleArray()));
      Tensor x = Tensor.of(new Random(1).doubles(4 * 3 * 16 * 16, -1, 1).toArray(), Shape.of(4, 3, 16, 16), DType.F32, cpu);
      List<UnitProfile> prof = UnitProfiler.profile(m, x, 2, 2);
      assertEquals(m.units().stream().map(u -> u.name()).toList(), prof.stream().map(UnitProfile::name).toList());
      for (UnitProfile u : prof) assertTrue(u.forwardSeconds() > 0 && u.backwardSeconds() >= 0, u.toString());
      m.stateDict().forEach((k, t) -> assertArrayEquals(before.get(k), t.toDoubleArray(), 0, k + " (BatchNorm statistics restored)"));
      m.parameters().forEach(p -> assertNull(p.grad()));
      UnitProfile fc = prof.getLast();
      // fc: 16·10 weights + 10 biases, × (parameter + gradient + 2 optimizer states) × 4 bytes; its output [4, 10] f32
      assertEquals(170, fc.parameters());
      assertEquals(170L * 4 * 4, fc.modelStateBytes());
      assertTrue(fc.activationBytes() >= 4 * 10 * 4, fc.toString());
      assertEquals(2, SplitPolicy.split(new SplitPolicy.Profiled(prof), m.units(), 2).parts());
    }
  }

  @Test void aViewHoldsNoActivationMemory() {
    try (CpuBackend cpu = CpuBackend.create(1)) {
      UnitModel vit = Zoo.build(ModuleContext.of(cpu, 0), ModelSpec.of("vit_tiny_28", 10));
      Tensor x = Tensor.of(new Random(1).doubles(2 * 28 * 28, -1, 1).toArray(), Shape.of(2, 1, 28, 28), DType.F32, cpu);
      List<UnitProfile> prof = UnitProfiler.profile(vit, x, 0, 1);
      UnitProfile pool = prof.stream().filter(u -> u.name().equals("pool")).findFirst().orElseThrow();
      assertEquals(0, pool.activationBytes(), "class-token pooling is a view of its input");
      UnitProfile block = prof.stream().filter(u -> u.name().equals("blocks.0")).findFirst().orElseThrow();
      // at least the block's output [2, 50, 96] f32 and the attention scores [2, 3, 50, 50]
      assertTrue(block.activationBytes() >= (2L * 50 * 96 + 2L * 3 * 50 * 50) * 4, block.toString());
    }
  }
}
