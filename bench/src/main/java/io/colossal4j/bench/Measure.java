package io.colossal4j.bench;

import java.util.Arrays;

/**
 * Side-by-side timing: ours and a peer run in alternating rounds in the same process, so both see the same
 * machine load, JIT state and caches. Each round times a batch of calls long enough (≥ 0.2 s) to swamp timer
 * and scheduling noise; the result is each side's median round.
 */
final class Measure {
  private Measure() {}

  static final int ROUNDS = 5;

  /** Median seconds per call of each body, after warming both up. */
  static double[] sideBySide(Runnable... bodies) {
    int[] reps = new int[bodies.length];
    for (int i = 0; i < bodies.length; i++) reps[i] = calibrate(bodies[i]);
    double[][] rounds = new double[bodies.length][ROUNDS];
    for (int r = 0; r < ROUNDS; r++)
      for (int i = 0; i < bodies.length; i++) {
        long t0 = System.nanoTime();
        for (int k = 0; k < reps[i]; k++) bodies[i].run();
        rounds[i][r] = (System.nanoTime() - t0) / 1e9 / reps[i];
      }
    double[] med = new double[bodies.length];
    for (int i = 0; i < bodies.length; i++) {
      Arrays.sort(rounds[i]);
      med[i] = rounds[i][ROUNDS / 2];
    }
    return med;
  }

  /**
   * Warms the body up (≥ 2 s and ≥ 20 calls, so the JIT has compiled every loop of ours at its top tier even
   * on a busy machine) and returns the calls per 0.2 s round, estimated from the last half of the warm-up.
   */
  private static int calibrate(Runnable body) {
    long start = System.nanoTime(), half = 0;
    int calls = 0, halfCalls = 0;
    while (System.nanoTime() - start < 2_000_000_000L || calls < 20) {
      body.run();
      calls++;
      if (half == 0 && System.nanoTime() - start >= 1_000_000_000L && calls >= 10) { half = System.nanoTime(); halfCalls = calls; }
    }
    double per = (System.nanoTime() - half) / 1e9 / (calls - halfCalls);
    return (int) Math.max(1, Math.ceil(0.2 / per));
  }
}
