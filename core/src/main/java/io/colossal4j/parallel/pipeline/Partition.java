package io.colossal4j.parallel.pipeline;

import java.util.ArrayList;
import java.util.List;

/**
 * Cuts a sequence of {@code n} items into {@code k} non-empty contiguous ranges so that the heaviest range is as
 * light as possible (the linear-partition problem, solved exactly by dynamic programming in O(k·n²); n is a
 * model's unit count, at most a few hundred). Ties between cuts with the same heaviest range are broken by the
 * smaller sum of squared range costs, which spreads the remaining weight evenly instead of piling it on one side.
 */
final class Partition {
  private Partition() {}

  /** Cost of the items [from, to): must be non-negative and not decrease when a range grows. */
  @FunctionalInterface
  interface RangeCost { double of(int from, int to); }

  /** The start index of each of the {@code k} ranges (the first is 0). */
  static List<Integer> minMax(int n, int k, RangeCost cost) {
    if (k < 1 || k > n) throw new IllegalArgumentException("cannot cut " + n + " units into " + k + " non-empty parts");
    double[][] max = new double[k + 1][n + 1], sq = new double[k + 1][n + 1];
    int[][] cut = new int[k + 1][n + 1];
    for (int i = 1; i <= n; i++) {
      double c = cost.of(0, i);
      max[1][i] = c;
      sq[1][i] = c * c;
    }
    for (int parts = 2; parts <= k; parts++)
      for (int i = parts; i <= n - (k - parts); i++) {
        double bestMax = Double.POSITIVE_INFINITY, bestSq = Double.POSITIVE_INFINITY;
        for (int j = parts - 1; j < i; j++) {
          double c = cost.of(j, i), m = Math.max(max[parts - 1][j], c), s = sq[parts - 1][j] + c * c;
          if (better(m, s, bestMax, bestSq)) { bestMax = m; bestSq = s; cut[parts][i] = j; }
        }
        max[parts][i] = bestMax;
        sq[parts][i] = bestSq;
      }
    List<Integer> starts = new ArrayList<>();
    for (int parts = k, i = n; parts >= 1; i = cut[parts][i], parts--) starts.addFirst(parts == 1 ? 0 : cut[parts][i]);
    return starts;
  }

  private static boolean better(double m, double s, double bestMax, double bestSq) {
    double tol = 1e-12 * Math.max(1, Math.abs(bestMax));
    if (m < bestMax - tol) return true;
    return m <= bestMax + tol && s < bestSq;
  }

  /** {@code RangeCost} of summed per-item weights. */
  static RangeCost sums(double[] weights) {
    double[] prefix = new double[weights.length + 1];
    for (int i = 0; i < weights.length; i++) prefix[i + 1] = prefix[i] + weights[i];
    return (from, to) -> prefix[to] - prefix[from];
  }
}
