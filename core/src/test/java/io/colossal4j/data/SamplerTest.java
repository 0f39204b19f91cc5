package io.colossal4j.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.colossal4j.data.DistributedSampler.Tail;
import java.util.Arrays;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/** Sampler orders, and distributed sharding against hand-derived PyTorch DistributedSampler outputs. */
class SamplerTest {
  @Test void sequentialAndShuffled() {
    assertArrayEquals(new int[] {0, 1, 2, 3}, Sampler.sequential(4).indices(7));
    Sampler s = Sampler.shuffled(1000, 42);
    int[] e0 = s.indices(0), e1 = s.indices(1);
    assertArrayEquals(IntStream.range(0, 1000).toArray(), Arrays.stream(e0).sorted().toArray(), "a permutation");
    assertArrayEquals(e0, Sampler.shuffled(1000, 42).indices(0), "a pure function of (seed, epoch)");
    assertFalse(Arrays.equals(e0, e1), "each epoch is reshuffled");
    assertFalse(Arrays.equals(e0, Sampler.shuffled(1000, 43).indices(0)), "the seed matters");
  }

  /** n=10 over 3 ranks, unshuffled: PyTorch pads with [0, 1] and strides by 3 (or drops 9). */
  @Test void distributedMatchesPyTorchSemantics() {
    int[][] pad = {{0, 3, 6, 9}, {1, 4, 7, 0}, {2, 5, 8, 1}};
    int[][] drop = {{0, 3, 6}, {1, 4, 7}, {2, 5, 8}};
    for (int r = 0; r < 3; r++) {
      assertArrayEquals(pad[r], new DistributedSampler(10, 3, r, false, 0, Tail.PAD).indices(0));
      assertArrayEquals(drop[r], new DistributedSampler(10, 3, r, false, 0, Tail.DROP).indices(0));
    }
  }

  @Test void shardsOfAShuffledEpochCoverTheDataOnce() {
    int n = 1001, ranks = 4;
    int[] perm = Sampler.shuffled(n, 5).indices(3);
    int[] seen = new int[n];
    for (int r = 0; r < ranks; r++) {
      DistributedSampler d = new DistributedSampler(n, ranks, r, true, 5, Tail.DROP);
      assertEquals(250, d.length());
      for (int i : d.indices(3)) seen[i]++;
    }
    // DROP keeps the first 1000 positions of the shared permutation, each exactly once.
    for (int p = 0; p < n; p++) assertEquals(p < 1000 ? 1 : 0, seen[perm[p]], "position " + p);
    assertEquals(251, new DistributedSampler(n, ranks, 0, true, 5, Tail.PAD).length());
  }

  @Test void badArgumentsAreNamed() {
    var e = assertThrows(DataException.class, () -> new DistributedSampler(10, 2, 2, false, 0, Tail.PAD));
    assertEquals("distributed sampler: rank 2 is out of range 0..1", e.getMessage());
  }
}
