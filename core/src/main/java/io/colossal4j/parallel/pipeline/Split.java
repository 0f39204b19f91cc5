package io.colossal4j.parallel.pipeline;

import java.util.ArrayList;
import java.util.List;

/**
 * A model's units cut into contiguous parts: part {@code i} holds units {@code starts[i] .. starts[i+1]-1}.
 * With {@code v} chunks per stage there are {@code p·v} parts ("virtual stages"); part {@code c} runs on pipeline
 * rank {@code c mod p} as that rank's chunk {@code c / p} (Megatron's round-robin assignment), so every rank
 * holds some early and some late layers. Without interleaving, part {@code i} is stage {@code i}.
 *
 * @param units  the model's unit names, in forward order
 * @param starts the index of each part's first unit: starts at 0, strictly increasing, each below units.size()
 */
public record Split(List<String> units, List<Integer> starts) {
  public Split {
    units = List.copyOf(units);
    starts = List.copyOf(starts);
    if (starts.isEmpty() || starts.getFirst() != 0)
      throw new IllegalArgumentException("a split starts its first part at unit 0, got starts " + starts);
    for (int i = 1; i < starts.size(); i++) {
      int s = starts.get(i), prev = starts.get(i - 1);
      if (s <= prev || s >= units.size())
        throw new IllegalArgumentException(emptyPartMessage(units, starts, i));
    }
  }

  private static String emptyPartMessage(List<String> units, List<Integer> starts, int i) {
    int s = starts.get(i), prev = starts.get(i - 1);
    if (s >= units.size())
      return "part " + i + " of " + starts.size() + " would be empty: it starts at unit " + s + " but the model has only "
          + units.size() + " units (" + units.getFirst() + " .. " + units.getLast() + ")";
    return "part " + (i - 1) + " of " + starts.size() + " would be empty: part " + i + " starts at unit " + s + " ('" + units.get(s)
        + "'), not after part " + (i - 1) + "'s start " + prev + " ('" + units.get(prev) + "')";
  }

  public int parts() { return starts.size(); }

  /** First unit index of part {@code i}. */
  public int start(int part) { return starts.get(part); }

  /** One past the last unit index of part {@code i}. */
  public int end(int part) { return part + 1 < starts.size() ? starts.get(part + 1) : units.size(); }

  /** The unit names of part {@code i}. */
  public List<String> unitsOf(int part) { return units.subList(start(part), end(part)); }

  /** For each part, its unit count. */
  public List<Integer> sizes() {
    List<Integer> out = new ArrayList<>();
    for (int i = 0; i < parts(); i++) out.add(end(i) - start(i));
    return out;
  }

  @Override public String toString() {
    List<String> parts = new ArrayList<>();
    for (int i = 0; i < parts(); i++) parts.add(String.join(", ", unitsOf(i)));
    return String.join(" | ", parts);
  }
}
