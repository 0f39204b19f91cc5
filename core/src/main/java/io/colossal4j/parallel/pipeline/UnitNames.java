package io.colossal4j.parallel.pipeline;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * Resolves the names users split on (the handbook's SPLIT_NODE) to unit indices. A name is either a unit's
 * own name ({@code blocks.3}, {@code layer1.2}: nested names address the units as the model lists them) or a
 * dotted group of units ({@code layer2}, {@code blocks}), meaning the group's first unit. Anything else is an
 * error that names the closest unit names.
 */
final class UnitNames {
  private UnitNames() {}

  /** Index of the unit where {@code name} begins. */
  static int resolve(String name, List<String> units) {
    int exact = units.indexOf(name);
    if (exact >= 0) return exact;
    for (int i = 0; i < units.size(); i++) if (units.get(i).startsWith(name + ".")) return i;
    throw new IllegalArgumentException("no unit named '" + name + "'" + closest(name, units)
        + "; the units are " + summary(units));
  }

  /** "; closest: 'blocks.1', 'blocks.11'" or "" when nothing is near. */
  static String closest(String name, List<String> units) {
    List<String> near = units.stream().filter(u -> distance(name, u) <= Math.max(2, name.length() / 3))
        .sorted(Comparator.comparingInt(u -> distance(name, u))).limit(3).toList();
    return near.isEmpty() ? "" : "; closest: '" + String.join("', '", near) + "'";
  }

  /** The unit list, with long runs of numbered units shortened ({@code blocks.0 .. blocks.31}). */
  static String summary(List<String> units) {
    List<String> out = new ArrayList<>();
    int i = 0;
    while (i < units.size()) {
      String group = group(units.get(i));
      int j = i;
      while (j + 1 < units.size() && group != null && group.equals(group(units.get(j + 1)))) j++;
      out.add(j - i >= 3 ? units.get(i) + " .. " + units.get(j) : String.join(", ", units.subList(i, j + 1)));
      i = j + 1;
    }
    return String.join(", ", out);
  }

  private static String group(String unit) {
    int dot = unit.lastIndexOf('.');
    return dot < 0 ? null : unit.substring(0, dot);
  }

  /** Levenshtein distance, case-insensitive. */
  static int distance(String a, String b) {
    a = a.toLowerCase();
    b = b.toLowerCase();
    int[] prev = new int[b.length() + 1], cur = new int[b.length() + 1];
    for (int j = 0; j <= b.length(); j++) prev[j] = j;
    for (int i = 1; i <= a.length(); i++) {
      cur[0] = i;
      for (int j = 1; j <= b.length(); j++)
        cur[j] = Math.min(Math.min(prev[j] + 1, cur[j - 1] + 1), prev[j - 1] + (a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1));
      int[] t = prev;
      prev = cur;
      cur = t;
    }
    return prev[b.length()];
  }
}
