package io.colossal4j.launch;

/**
 * SLURM's compressed host lists ({@code SLURM_JOB_NODELIST}): {@code node[01-04,07],gpu5}. Only the first
 * host is needed (it serves the store), so only that one is expanded.
 */
final class NodeList {
  private NodeList() {}

  /** The first host of a SLURM node list, e.g. {@code node[01-04,07]} gives {@code node01}. */
  static String firstHost(String list) {
    String s = list.trim();
    if (s.isEmpty()) throw new IllegalArgumentException("SLURM_JOB_NODELIST is empty");
    int depth = 0, end = s.length();
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (c == '[') depth++;
      else if (c == ']') depth--;
      else if (c == ',' && depth == 0) { end = i; break; }
    }
    String first = s.substring(0, end);
    int open = first.indexOf('[');
    if (open < 0) return first;
    int close = first.indexOf(']', open);
    if (close < 0) throw new IllegalArgumentException("SLURM_JOB_NODELIST '" + list + "' has an unclosed '['");
    String range = first.substring(open + 1, close).split(",")[0].split("-")[0];
    return first.substring(0, open) + range + first.substring(close + 1);
  }
}
