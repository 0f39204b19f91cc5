package io.colossal4j.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.backend.cuda.CudaOptions.CudnnPlans;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The host side of cuDNN plan autotuning (no GPU): which timing wins, how a choice reads, the option's default. */
class CudnnTunerTest {
  private static CudnnTuner.Timing ran(String engine, double ms) { return new CudnnTuner.Timing(engine, 0, ms, null); }

  private static CudnnTuner.Timing failed(String engine) { return new CudnnTuner.Timing(engine, 0, Double.NaN, "refused"); }

  @Test void fastestIsTheSmallestMedianAmongCandidatesThatRan() {
    assertEquals(2, CudnnTuner.fastest(List.of(ran("eng1", 0.5), failed("eng2"), ran("eng3 k24=7", 0.25), ran("eng4", 0.3))));
    assertEquals(1, CudnnTuner.fastest(List.of(failed("eng1"), ran("eng2", 9))));
    assertEquals(0, CudnnTuner.fastest(List.of(ran("eng1", 0.25), ran("eng2", 0.25))), "a tie keeps the heuristics' earlier choice");
    assertEquals(-1, CudnnTuner.fastest(List.of(failed("eng1"), failed("eng2"))));
    assertEquals(-1, CudnnTuner.fastest(List.of()));
  }

  @Test void aChoiceNamesItsEngineAndEveryCandidate() {
    var c = new CudnnTuner.Choice("bwd BF16 2x16 577x577x80 full", "eng3 k24=7",
        List.of(ran("eng1", 0.5), new CudnnTuner.Timing("eng3 k24=7", 3L << 20, 0.25, null), failed("eng9")), "", 12.4);
    assertEquals("bwd BF16 2x16 577x577x80 full: eng3 k24=7 [built in 12 ms] (fastest of 3: eng1 0.500 ms; eng3 k24=7 0.250 ms (ws 3.0 MiB); eng9 failed: refused;)",
        c.describe());
    assertEquals("fwd: eng1 [built in 2 ms] (only candidate, untimed) [knobs eng1: k24 0..3]",
        new CudnnTuner.Choice("fwd", "eng1", List.of(), "eng1: k24 0..3", 2).describe());
  }

  @Test void configTagsAreSortedByKnobTypeAndKnobsEnumerateTheirRange() {
    var c = new CudnnEngines.Config(8, java.util.Map.of(24, 3L, 14, 2L));
    assertEquals("eng8 k14=2 k24=3", c.tag());
    assertEquals("eng8 k14=2 k24=5", c.with(24, 5).tag());
    assertEquals("eng8 k2=1 k14=2 k24=3", c.with(2, 1).tag());
    assertEquals("eng8 k14=2 k24=3", c.tag(), "with() leaves the original as it was");
    assertEquals(List.of(0L, 1L, 2L, 3L), new CudnnEngines.Knob(24, 0, 3, 1).values(16));
    assertEquals(List.of(1L, 3L), new CudnnEngines.Knob(14, 1, 4, 2).values(16));
    assertEquals(List.of(5L, 6L), new CudnnEngines.Knob(40, 5, 100, 0).values(2), "a zero stride counts as 1; the limit holds");
    assertEquals("k14 1..4/2", new CudnnEngines.Knob(14, 1, 4, 2).describe());
  }

  @Test void autotuningIsTheDefaultAndSurvivesTheOtherOptions() {
    CudaOptions d = CudaOptions.defaults(Map.of());
    assertEquals(CudnnPlans.AUTOTUNE, d.cudnnPlans());
    assertEquals(CudnnPlans.AUTOTUNE, new CudaOptions(Map.of(), 1 << 20, null).cudnnPlans());
    CudaOptions h = d.withCudnnPlans(CudnnPlans.HEURISTIC).withMemoryCap(1 << 30).withKernelCacheDir(Path.of("k"));
    assertEquals(CudnnPlans.HEURISTIC, h.cudnnPlans());
    assertEquals(1 << 30, h.memoryCapBytes());
  }
}
