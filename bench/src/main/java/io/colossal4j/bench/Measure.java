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

  /** Median seconds per call of each body, after warming both up (at least 2 s each), over {@link #ROUNDS} rounds. */
  static double[] sideBySide(Runnable... bodies) { return sideBySide(2, ROUNDS, bodies); }

  /**
   * Median seconds per call of each body over {@code roundCount} alternating rounds, after warming each up
   * for at least {@code minWarmSeconds} (see {@link #calibrate}).
   */
  static double[] sideBySide(double minWarmSeconds, int roundCount, Runnable... bodies) {
    int[] reps = new int[bodies.length];
    for (int i = 0; i < bodies.length; i++) reps[i] = calibrate(bodies[i], minWarmSeconds);
    double[][] rounds = new double[bodies.length][roundCount];
    for (int r = 0; r < roundCount; r++)
      for (int i = 0; i < bodies.length; i++) {
        long t0 = System.nanoTime();
        for (int k = 0; k < reps[i]; k++) bodies[i].run();
        rounds[i][r] = (System.nanoTime() - t0) / 1e9 / reps[i];
      }
    double[] med = new double[bodies.length];
    for (int i = 0; i < bodies.length; i++) {
      Arrays.sort(rounds[i]);
      med[i] = rounds[i][roundCount / 2];
    }
    return med;
  }

  /**
   * Warms the body up until it is steady, then returns the calls per 0.2 s round. Steady means: at least
   * minWarmSeconds and 20 calls, and the last 0.2 s batch no more than 10% slower per call than the best batch so far (our
   * kernels start interpreted and reach full speed only once the JIT has compiled them, which on a busy
   * machine can take several seconds); at most 30 s.
   */
  private static int calibrate(Runnable body, double minWarmSeconds) {
    long start = System.nanoTime();
    int calls = 0;
    double best = Double.MAX_VALUE, last = Double.MAX_VALUE;
    while (true) {
      long b0 = System.nanoTime();
      int k = 0;
      do { body.run(); k++; } while (System.nanoTime() - b0 < 200_000_000L);
      calls += k;
      last = (System.nanoTime() - b0) / 1e9 / k;
      best = Math.min(best, last);
      double elapsed = (System.nanoTime() - start) / 1e9;
      if ((elapsed >= minWarmSeconds && calls >= 20 && last <= best * 1.1) || elapsed >= 30) break;
    }
    return (int) Math.max(1, Math.ceil(0.2 / best));
  }
}
