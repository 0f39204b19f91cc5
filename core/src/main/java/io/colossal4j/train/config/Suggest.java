package io.colossal4j.train.config;

import java.util.Collection;
import java.util.Optional;

/** "Did you mean": the closest candidate by edit distance, if it is close enough to be a plausible typo. */
final class Suggest {
  private Suggest() {}

  static Optional<String> closest(String word, Collection<String> candidates) {
    String best = null;
    int bestDist = Integer.MAX_VALUE;
    for (String c : candidates) {
      int d = distance(word.toLowerCase(), c.toLowerCase());
      if (d < bestDist) { bestDist = d; best = c; }
    }
    return best != null && bestDist <= Math.max(2, word.length() / 3) ? Optional.of(best) : Optional.empty();
  }

  static String didYouMean(String word, Collection<String> candidates, String prefix) {
    return closest(word, candidates).map(c -> "; did you mean '" + prefix + c + "'?").orElse("");
  }

  /** Levenshtein distance with adjacent transpositions counted as one edit (optimal string alignment). */
  static int distance(String a, String b) {
    int[][] d = new int[a.length() + 1][b.length() + 1];
    for (int i = 0; i <= a.length(); i++) d[i][0] = i;
    for (int j = 0; j <= b.length(); j++) d[0][j] = j;
    for (int i = 1; i <= a.length(); i++)
      for (int j = 1; j <= b.length(); j++) {
        int cost = a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1;
        d[i][j] = Math.min(Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1), d[i - 1][j - 1] + cost);
        if (i > 1 && j > 1 && a.charAt(i - 1) == b.charAt(j - 2) && a.charAt(i - 2) == b.charAt(j - 1))
          d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    return d[a.length()][b.length()];
  }
}
