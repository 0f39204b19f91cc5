package io.colossal4j.bench;

import java.util.Arrays;

/**
 * Side-by-side timing: ours and a peer run in alternating rounds in the same process, so both see the same
 * machine load, JIT state and caches. Each round times a batch of calls long enough (≥ 0.2 s) to swamp timer
 * and scheduling noise, the bodies one after another, in an order that turns by one every round (so no body
 * always runs first, after the same neighbour). Reported: each body's median round, and for a pair of bodies the
 * median of their per-round time ratios: on this shared machine the load changes within seconds, and a ratio of two
 * rounds taken back to back sees the same load where a ratio of two medians may pair a busy round with a quiet one.
 */
final class Measure {
  private Measure() {}

  static final int ROUNDS = 5;

  /** The seconds per call of each body in each round: {@code rounds[body][round]}. */
  record Timing(double[][] rounds) {
    /** Median seconds per call of a body. */
    double median(int body) { return quantile(rounds[body].clone(), 0.5); }

    /** The body with the shorter median time of two (the faster peer). */
    int faster(int a, int b) { return median(a) <= median(b) ? a : b; }

    /** The median over rounds of peer time / our time: our throughput relative to the peer's. */
    double ratio(int ours, int peer) { return quantile(ratios(ours, peer), 0.5); }

    /** The lower and upper quartiles of the per-round ratios, formatted "q1–q3". */
    String spread(int ours, int peer) {
      double[] r = ratios(ours, peer);
      return String.format("%.2f-%.2f", quantile(r, 0.25), quantile(r, 0.75));
    }

    private double[] ratios(int ours, int peer) {
      double[] r = new double[rounds[ours].length];
      for (int i = 0; i < r.length; i++) r[i] = rounds[peer][i] / rounds[ours][i];
      return r;
    }

    /** The value at fraction q of the values, sorted in place (the nearest rank; the middle one for q = 0.5 and an odd count). */
    private static double quantile(double[] v, double q) {
      Arrays.sort(v);
      return v[(int) Math.round(q * (v.length - 1))];
    }
  }

  /** {@link #sideBySide(double, int, Runnable...)} with at least 2 s of warm-up and {@link #ROUNDS} rounds. */
  static Timing sideBySide(Runnable... bodies) { return sideBySide(2, ROUNDS, bodies); }

  /**
   * Times the bodies over {@code roundCount} alternating rounds, after warming each up for at least
   * {@code minWarmSeconds} (see {@link #calibrate}).
   */
  static Timing sideBySide(double minWarmSeconds, int roundCount, Runnable... bodies) {
    int[] reps = new int[bodies.length];
    for (int i = 0; i < bodies.length; i++) reps[i] = calibrate(bodies[i], minWarmSeconds);
    double[][] rounds = new double[bodies.length][roundCount];
    for (int r = 0; r < roundCount; r++)
      for (int k = 0; k < bodies.length; k++) {
        int i = (r + k) % bodies.length;
        long t0 = System.nanoTime();
        for (int c = 0; c < reps[i]; c++) bodies[i].run();
        rounds[i][r] = (System.nanoTime() - t0) / 1e9 / reps[i];
      }
    return new Timing(rounds);
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
