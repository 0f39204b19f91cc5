package io.colossal4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.models.ModelSpec;
import io.colossal4j.models.Zoo;
import io.colossal4j.nn.ModuleContext;
import io.colossal4j.tensor.DType;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * {@code bench nccl-pp} on the CPU process group with a small ViT: the command runs each schedule through the real
 * pipeline runner and prints rows whose fields agree with each other and with the closed forms (the GPU run uses
 * the same code with CUDA backends and an NCCL group). Timings on a shared 2-core machine are not asserted beyond
 * being positive and consistent.
 */
class NcclPpBenchTest {
  @Test void cpuRunReportsSaneRows() throws Exception {
    var bytes = new ByteArrayOutputStream();
    int rc = new NcclPpBench().run(new String[] {"--device", "cpu", "--models", "vit_mini_28", "--schedules", "gpipe,interleaved",
        "--images", "8", "--micro-batches", "4", "--warmup", "1", "--steps", "1"}, new PrintStream(bytes, true, StandardCharsets.UTF_8));
    String text = bytes.toString(StandardCharsets.UTF_8);
    assertEquals(0, rc, text);
    List<String> lines = text.lines().toList();
    assertTrue(lines.contains(NcclPpBench.HEADER), text);
    assertTrue(text.contains("# vit_mini_28 gpipe: parts start at blocks.2 "), text);
    assertTrue(text.contains("# vit_mini_28 interleaved: parts start at blocks.1, blocks.2, blocks.3 "), text);
    List<String[]> rows = lines.stream().filter(l -> l.startsWith("colossal4j,")).map(l -> l.split(",")).toList();
    assertEquals(2, rows.size(), text);
    double[][] expect = {{1, 1 / 5.0}, {2, 1 / 9.0}};   // v, theory (p-1)/(v·m + p-1) at p = 2, m = 4
    for (int i = 0; i < 2; i++) {
      String[] f = rows.get(i);
      assertEquals(List.of("vit_mini_28", "2", String.valueOf((int) expect[i][0]), "4", "2"), Arrays.asList(f).subList(1, 7).stream()
          .filter(s -> !s.equals("gpipe") && !s.equals("interleaved")).toList(), "model, p, v, m, micro-batch: " + String.join(",", f));
      double step = d(f, 7), perSecond = d(f, 8), sched = d(f, 9), busy0 = d(f, 10), busy1 = d(f, 11);
      assertTrue(step > 0 && sched > 0 && sched <= step + 0.1, "schedule part within the step: " + String.join(",", f));
      // samples/s from the unrounded step; the row prints the step to 0.1 ms (±0.05 ms) and samples/s to 0.1
      assertEquals(8 / (step / 1e3), perSecond, 0.05 + 8e3 * 0.05 / (step * step) + 1e-6 * perSecond, "samples/s = 8 images per step");
      assertTrue(busy0 > 0 && busy1 > 0, "busy times: " + String.join(",", f));
      // the row prints times to 0.1 ms (±0.05) and bubbles to 0.001 (±0.0005): 1 - busy/sched recomputed from the
      // printed times can differ from the printed bubble by 0.0005 + 0.05·(1/sched + busy/sched²)
      assertEquals(1 - busy0 / sched, d(f, 12), 5e-4 + 0.05 * (1 / sched + busy0 / (sched * sched)) + 1e-9, "bubble of stage 0 = 1 - busy/sched");
      assertEquals(1 - busy1 / sched, d(f, 13), 5e-4 + 0.05 * (1 / sched + busy1 / (sched * sched)) + 1e-9, "bubble of stage 1");
      assertEquals((d(f, 12) + d(f, 13)) / 2, d(f, 14), 2e-3, "mean bubble");
      assertEquals(expect[i][1], d(f, 15), 1e-3, "theory");
      assertTrue(d(f, 16) > 0 && d(f, 17) > 0, "peak memory per stage: " + String.join(",", f));
      // inside the pipeline a stage's actions lie within its own schedule time, so the bubble is in [0, 1)
      for (int c : new int[] {18, 19}) assertTrue(d(f, c) >= -1e-3 && d(f, c) < 1, "in-pipeline bubble: " + String.join(",", f));
    }
  }

  @Test void splitsBalanceBlocksAndTheLmHead() {
    var ctx = new ModuleContext(CpuBackend.reference(), DType.F32, 0);
    var gpt = Zoo.build(ctx, ModelSpec.of("gpt_small", 0));   // 4 blocks + a head of 256 / (12·128) = 0.17 blocks
    assertEquals(List.of("transformer.h.2"), PipelineStepTimer.starts(gpt, 2));
    assertEquals(List.of("transformer.h.1", "transformer.h.2", "transformer.h.3"), PipelineStepTimer.starts(gpt, 4));
  }

  @Test void badOptionsAreRejectedWithUsage() throws Exception {
    var out = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
    assertEquals(2, new NcclPpBench().run(new String[] {"--device", "cpu", "--schedules", "zigzag"}, out));
    assertEquals(2, new NcclPpBench().run(new String[] {"--device", "cpu", "--micro-batches", "3"}, out));
  }

  private static double d(String[] f, int i) { return Double.parseDouble(f[i]); }
}
