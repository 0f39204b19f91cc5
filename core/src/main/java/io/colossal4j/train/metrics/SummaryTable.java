package io.colossal4j.train.metrics;

import java.util.List;

/**
 * The final summary: two aligned columns in a box.
 * <pre>
 * +---------------+------------------+
 * | test accuracy | 88.40%           |
 * | wall time     | 8:12             |
 * +---------------+------------------+
 * </pre>
 */
public final class SummaryTable {
  private SummaryTable() {}

  public record Row(String label, String value) {}

  public static String render(String title, List<Row> rows) {
    int a = rows.stream().mapToInt(r -> r.label().length()).max().orElse(0);
    int b = rows.stream().mapToInt(r -> r.value().length()).max().orElse(0);
    b = Math.max(b, title.length() - a - 3);
    String rule = "+" + "-".repeat(a + 2) + "+" + "-".repeat(b + 2) + "+\n";
    StringBuilder sb = new StringBuilder();
    sb.append("+").append("-".repeat(a + b + 5)).append("+\n");
    sb.append("| ").append(pad(title, a + b + 3)).append(" |\n");
    sb.append(rule);
    for (Row r : rows) sb.append("| ").append(pad(r.label(), a)).append(" | ").append(pad(r.value(), b)).append(" |\n");
    sb.append(rule);
    return sb.toString();
  }

  private static String pad(String s, int width) { return s + " ".repeat(width - s.length()); }
}
