package io.colossal4j.parallel.pipeline;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.models.ModelSpec;
import io.colossal4j.models.Zoo;
import io.colossal4j.models.resnet.ResNet;
import io.colossal4j.models.resnet.ResNetConfig;
import io.colossal4j.nn.ModuleContext;
import io.colossal4j.nn.Unit;
import io.colossal4j.nn.UnitModel;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/** Split policies against hand-counted parameters and a brute-force search; bad splits rejected with the numbers. */
class SplitPolicyTest {
  static final CpuBackend CPU = CpuBackend.create(1);
  static final UnitModel VIT = Zoo.build(ModuleContext.of(CPU, 0), ModelSpec.of("vit_tiny_28", 10));
  static final UnitModel RESNET = new ResNet(ModuleContext.of(CPU, 0),
      new ResNetConfig(false, List.of(2, 2, 1, 1), List.of(4, 8, 8, 16), 4, 3, 10, true));

  @AfterAll static void close() { CPU.close(); }

  @Test void uniformCutsByUnitCount() {
    Split s = SplitPolicy.split(new SplitPolicy.Uniform(), VIT.units(), 2);
    // 9 units: patch_embed, pos_embed, blocks.0-3, norm, pool, head; the first part gets the odd unit
    assertEquals(List.of("patch_embed", "pos_embed", "blocks.0", "blocks.1", "blocks.2"), s.unitsOf(0));
    assertEquals(List.of("blocks.3", "norm", "pool", "head"), s.unitsOf(1));
  }

  @Test void balancedMinimisesTheLargestParameterCount() {
    // by hand (d = 96, mlp 192): patch_embed 1,632; pos_embed 4,896 (cls + 50 positions); block 74,784; norm 192;
    // head 970. Cut before blocks.2: 156,096 | 150,730; before blocks.1 or blocks.3 the larger side is 225,514+.
    Split s = SplitPolicy.split(new SplitPolicy.Balanced(), VIT.units(), 2);
    assertEquals(List.of(0, 4), s.starts());
    assertEquals(156_096L, paramsOf(VIT, s, 0));
    assertEquals(150_730L, paramsOf(VIT, s, 1));
  }

  @Test void partitionMatchesBruteForce() {
    Random rnd = new Random(3);
    for (int trial = 0; trial < 200; trial++) {
      int n = 1 + rnd.nextInt(9), k = 1 + rnd.nextInt(n);
      double[] w = new double[n];
      for (int i = 0; i < n; i++) w[i] = rnd.nextInt(4) == 0 ? 0 : rnd.nextInt(100);
      List<Integer> starts = Partition.minMax(n, k, Partition.sums(w));
      assertEquals(bruteForce(w, k), maxPart(w, starts), 0, "weights " + java.util.Arrays.toString(w) + " into " + k);
      assertEquals(k, starts.size());
    }
  }

  @Test void customizedNamesStartParts() {
    Split s = SplitPolicy.split(new SplitPolicy.Customized(List.of("layer1.1", "layer2", "layer4.0")), RESNET.units(), 4);
    assertEquals(List.of("conv1", "bn1", "act1", "maxpool", "layer1.0"), s.unitsOf(0));
    assertEquals(List.of("layer1.1"), s.unitsOf(1));   // nested name: a multi-level split inside layer1
    assertEquals(List.of("layer2.0", "layer2.1", "layer3.0"), s.unitsOf(2));  // a group name means its first unit
    assertEquals(List.of("layer4.0", "global_pool", "fc"), s.unitsOf(3));
    // the first unit may be written out
    assertEquals(List.of(0, 5), SplitPolicy.split(new SplitPolicy.Customized(List.of("conv1", "layer1.1")), RESNET.units(), 2).starts());
  }

  @Test void badSplitsAreRejectedWithTheNumbers() {
    var unknown = assertThrows(IllegalArgumentException.class,
        () -> SplitPolicy.split(new SplitPolicy.Customized(List.of("blok.2")), VIT.units(), 2));
    assertTrue(unknown.getMessage().startsWith("no unit named 'blok.2'; closest: 'blocks.2'"), unknown.getMessage());
    assertTrue(unknown.getMessage().contains("the units are patch_embed, pos_embed, blocks.0 .. blocks.3, norm, pool, head"), unknown.getMessage());
    var empty = assertThrows(IllegalArgumentException.class,
        () -> SplitPolicy.split(new SplitPolicy.Customized(List.of("blocks.2", "blocks.2")), VIT.units(), 3));
    assertEquals("part 1 of 3 would be empty: part 2 starts at unit 4 ('blocks.2'), not after part 1's start 4 ('blocks.2')", empty.getMessage());
    var backwards = assertThrows(IllegalArgumentException.class,
        () -> SplitPolicy.split(new SplitPolicy.Customized(List.of("norm", "blocks.1")), VIT.units(), 3));
    assertTrue(backwards.getMessage().startsWith("part 1 of 3 would be empty"), backwards.getMessage());
    var count = assertThrows(IllegalArgumentException.class,
        () -> SplitPolicy.split(new SplitPolicy.Customized(List.of("blocks.2")), VIT.units(), 4));
    assertEquals("the customized split [blocks.2] gives 2 parts but the pipeline needs 4; give the 3 unit names where parts 1..3 begin",
        count.getMessage());
    var tooMany = assertThrows(IllegalArgumentException.class, () -> SplitPolicy.split(new SplitPolicy.Uniform(), VIT.units(), 10));
    assertTrue(tooMany.getMessage().startsWith("cannot split 9 units into 10 pipeline parts: every part needs at least one unit"), tooMany.getMessage());
  }

  @Test void profiledBalancesTheLargerOfTimeAndMemoryShare() {
    // time 2,2,2,2 (total 8) and memory 6,1,1,0 (total 8). By time alone the cut is 2 | 2 units (shares 0.5 each),
    // but then part 0 holds 7/8 of the memory. Cutting after unit 0 gives part 0 max(2/8, 6/8) = 0.75 and
    // part 1 max(6/8, 2/8) = 0.75: the heaviest part is lighter, so profiled cuts there.
    List<UnitProfile> prof = new ArrayList<>();
    long[] mem = {6, 1, 1, 0};
    for (int i = 0; i < 4; i++) prof.add(new UnitProfile(VIT.units().get(i).name(), 0, mem[i], 0.5, 1.5, 0));
    List<Unit> four = VIT.units().subList(0, 4);
    assertEquals(List.of(0, 1), SplitPolicy.split(new SplitPolicy.Profiled(prof), four, 2).starts());
    // with memory spread evenly, time decides: 2 units | 2 units
    prof.replaceAll(u -> new UnitProfile(u.name(), 0, 0, u.forwardSeconds(), u.backwardSeconds(), 2));
    assertEquals(List.of(0, 2), SplitPolicy.split(new SplitPolicy.Profiled(prof), four, 2).starts());
    var mismatch = assertThrows(IllegalArgumentException.class, () -> SplitPolicy.split(new SplitPolicy.Profiled(prof), VIT.units(), 2));
    assertTrue(mismatch.getMessage().startsWith("the profile describes units"), mismatch.getMessage());
  }

  static long paramsOf(UnitModel m, Split s, int part) {
    long n = 0;
    for (int i = s.start(part); i < s.end(part); i++) n += m.units().get(i).module().parameterCount();
    return n;
  }

  static double maxPart(double[] w, List<Integer> starts) {
    double max = 0;
    for (int p = 0; p < starts.size(); p++) {
      double sum = 0;
      for (int i = starts.get(p); i < (p + 1 < starts.size() ? starts.get(p + 1) : w.length); i++) sum += w[i];
      max = Math.max(max, sum);
    }
    return max;
  }

  /** The best heaviest part over every way to place k-1 cuts. */
  static double bruteForce(double[] w, int k) { return brute(w, 0, k); }

  private static double brute(double[] w, int from, int k) {
    if (k == 1) {
      double s = 0;
      for (int i = from; i < w.length; i++) s += w[i];
      return s;
    }
    double best = Double.POSITIVE_INFINITY, head = 0;
    for (int end = from + 1; end <= w.length - (k - 1); end++) {
      head += w[end - 1];
      best = Math.min(best, Math.max(head, brute(w, end, k - 1)));
    }
    return best;
  }
}
