package io.colossal4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code colossal split} prints the plan of a config's model: policy, units, parameters per stage. */
class SplitCommandTest {
  @TempDir Path dir;

  private String run(String... args) throws Exception {
    Path config = dir.resolve("run.yaml");
    Files.writeString(config, """
        model: {name: vit_tiny_28}
        train: {global_batch_size: 16}
        parallel: {pipeline: 2, num_micro_batches: 4, schedule: gpipe}
        """);
    PrintStream old = System.out;
    var buf = new ByteArrayOutputStream();
    System.setOut(new PrintStream(buf, true));
    try {
      String[] all = new String[args.length + 1];
      all[0] = config.toString();
      System.arraycopy(args, 0, all, 1, args.length);
      assertEquals(0, new SplitCommand().run(all));
    } finally {
      System.setOut(old);
    }
    return buf.toString();
  }

  @Test void balancedPlanNamesUnitsAndParameters() throws Exception {
    String out = run("--no-activations");
    assertTrue(out.contains("2 stages, gpipe, 2 parts (1 per stage), 4 micro-batches of 4 samples; split policy: balanced"), out);
    // the parameter counts derived by hand in SplitPolicyTest
    assertTrue(out.contains("0     156,096") && out.contains("units: patch_embed, pos_embed, blocks.0, blocks.1"), out);
    assertTrue(out.contains("1     150,730") && out.contains("units: blocks.2, blocks.3, norm, pool, head"), out);
    assertTrue(out.contains("not measured"), out);
  }

  @Test void customizedSplitAndMeasuredActivations() throws Exception {
    String out = run("--split", "blocks.3");
    assertTrue(out.contains("split policy: customized (parts begin at blocks.3)"), out);
    assertTrue(out.contains("units: blocks.3, norm, pool, head"), out);
    assertTrue(!out.contains("not measured") && out.contains("activations measured on 4 sample(s)"), out);
  }

  @Test void unknownUnitNameSuggestsTheClosest() {
    var e = assertThrows(IllegalArgumentException.class, () -> run("--split", "block.3", "--no-activations"));
    assertTrue(e.getMessage().startsWith("no unit named 'block.3'; closest: 'blocks.3'"), e.getMessage());
  }
}
