package io.colossal4j.train.precision;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.backend.Backend;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.optim.ParamGroup;
import io.colossal4j.optim.Sgd;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Loss scaling with plain SGD (p -= lr·g), whose updates are easy to derive by hand. */
class DynamicLossScalerTest {
  private static final Backend CPU = CpuBackend.reference();

  private final Tensor a = Tensor.of(new double[] {1, 2}, Shape.of(2), DType.F32, CPU);
  private final Tensor b = Tensor.of(new double[] {3}, Shape.of(1), DType.F32, CPU);
  private final Map<String, Tensor> params = new LinkedHashMap<>(Map.of("a", a));
  private final List<DynamicLossScaler.Outcome.Skipped> reported = new ArrayList<>();

  { params.put("b", b); }

  private Sgd sgd() { return new Sgd(ParamGroup.single(params, 0), 0, 0, false); }

  @Test void finiteGradientsAreUnscaledAndApplied() {
    DynamicLossScaler s = new DynamicLossScaler(new DynamicLossScaler.Config(8, 2, 0.5, 2), reported::add);
    Sgd opt = sgd();
    a.setGrad(Tensor.of(new double[] {8, 16}, Shape.of(2), DType.F32, CPU));  // scaled by 8: the true gradient is {1, 2}
    b.setGrad(Tensor.of(new double[] {-4}, Shape.of(1), DType.F32, CPU));
    var out = s.step(opt, 0.5, params, 1);
    assertEquals(new DynamicLossScaler.Outcome.Applied(1, 8), out);
    assertArrayEquals(new double[] {0.5, 1}, a.toDoubleArray(), 0);  // 1 - 0.5·1, 2 - 0.5·2
    assertArrayEquals(new double[] {3.25}, b.toDoubleArray(), 0);    // 3 - 0.5·(-0.5)
    assertTrue(a.grad() == null || java.util.Arrays.stream(a.grad().toDoubleArray()).allMatch(v -> v == 0), "gradients are cleared after the step");
    assertEquals(8, s.scale());
    a.setGrad(Tensor.of(new double[] {0, 0}, Shape.of(2), DType.F32, CPU));
    s.step(opt, 0.5, params, 2);
    assertEquals(16, s.scale(), "two good steps in a row (the growth interval) double the scale");
    assertTrue(reported.isEmpty());
  }

  @Test void anOverflowSkipsTheUpdateHalvesTheScaleAndIsReported() {
    DynamicLossScaler s = new DynamicLossScaler(new DynamicLossScaler.Config(1024, 2, 0.5, 2000), reported::add);
    Sgd opt = sgd();
    a.setGrad(Tensor.of(new double[] {1, 2}, Shape.of(2), DType.F32, CPU));
    b.setGrad(Tensor.of(new double[] {Double.POSITIVE_INFINITY}, Shape.of(1), DType.F32, CPU));
    var out = s.step(opt, 0.5, params, 7);
    DynamicLossScaler.Outcome.Skipped skipped = assertInstanceOf(DynamicLossScaler.Outcome.Skipped.class, out);
    assertEquals(new DynamicLossScaler.Outcome.Skipped(7, "b", 1024, 512), skipped);
    assertEquals(List.of(skipped), reported);
    assertTrue(skipped.describe().contains("step 7") && skipped.describe().contains("b") && skipped.describe().contains("512"), skipped.describe());
    assertArrayEquals(new double[] {1, 2}, a.toDoubleArray(), 0, "no parameter moved");
    assertArrayEquals(new double[] {3}, b.toDoubleArray(), 0);
    assertEquals(512, s.scale());
  }

  @Test void theScaledLossAndBadConfigs() {
    DynamicLossScaler s = new DynamicLossScaler(DynamicLossScaler.Config.DEFAULTS, reported::add);
    assertEquals(65536 * 1.5, s.scale(Tensor.scalar(1.5, DType.F32, CPU)).item());
    assertThrows(NullPointerException.class, () -> new DynamicLossScaler(DynamicLossScaler.Config.DEFAULTS, null));
    assertThrows(IllegalArgumentException.class, () -> new DynamicLossScaler.Config(0, 2, 0.5, 1));
    assertThrows(IllegalArgumentException.class, () -> new DynamicLossScaler.Config(1, 2, 1.5, 1));
  }
}
