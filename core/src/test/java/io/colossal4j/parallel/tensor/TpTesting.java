package io.colossal4j.parallel.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.distributed.RankThreads;
import io.colossal4j.distributed.cpu.CpuDistributed;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.testing.GradCheck;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.Supplier;

/** Shared plumbing of the tensor-parallel tests: tp ranks as threads, each with its own backend; value comparisons. */
public final class TpTesting {
  private TpTesting() {}

  public interface RankBody<T> { T run(ProcessGroup tp, CpuBackend cpu) throws Exception; }

  /**
   * Runs {@code body} on {@code tp} in-JVM ranks, each with a fresh backend from {@code backends} (closed
   * afterwards); returns the ranks' results in rank order. Bounded at 120 s so a hang fails the test.
   */
  public static <T> List<T> ranks(int tp, Supplier<CpuBackend> backends, RankBody<T> body) {
    return RankThreads.run(CpuDistributed.threads(tp), 120, g -> {
      try (CpuBackend cpu = backends.get()) {
        return body.run(g, cpu);
      } finally {
        g.close();
      }
    });
  }

  public static Tensor random(CpuBackend cpu, long seed, DType dtype, int... shape) {
    double[] d = new Random(seed).doubles(Shape.of(shape).numel(), -1, 1).toArray();
    return Tensor.of(d, Shape.of(shape), dtype, cpu);
  }

  public static Tensor leaf(Tensor t) { return t.requiresGrad(true); }

  /** Host copies of every entry (so they outlive the rank's backend). */
  public static Map<String, double[]> host(Map<String, Tensor> state) {
    Map<String, double[]> out = new LinkedHashMap<>();
    state.forEach((k, v) -> out.put(k, v.toDoubleArray()));
    return out;
  }

  /** Same names in the same order, every value within atol + rtol·|expected|. */
  public static void assertStateClose(Map<String, double[]> expected, Map<String, double[]> actual, double atol, double rtol, String what) {
    assertEquals(List.copyOf(expected.keySet()), List.copyOf(actual.keySet()), what + ": names");
    expected.forEach((k, v) -> GradCheck.assertClose(v, actual.get(k), atol, rtol, what + " " + k));
  }
}
