package io.colossal4j.parallel.pipeline;

import io.colossal4j.nn.Unit;
import java.util.ArrayList;
import java.util.List;

/**
 * How a model's units are cut into pipeline parts. Every policy cuts only between units, and the units include
 * every operation of the forward, so no cut can lose an operator (the handbook's "missing operators").
 */
public sealed interface SplitPolicy {
  /** Equal unit counts; the first {@code n mod k} parts get one unit more. */
  record Uniform() implements SplitPolicy {}

  /** Minimises the largest parameter count of a part (the handbook's "balanced"). */
  record Balanced() implements SplitPolicy {}

  /**
   * Minimises the heaviest part measured on a sample batch, where a part's weight is the larger of its share of
   * the step time (forward + backward) and its share of the memory (parameters, gradients, optimizer state and
   * activations): a part that is light in time but runs out of memory is as bad as a slow one.
   */
  record Profiled(List<UnitProfile> profile) implements SplitPolicy {
    public Profiled { profile = List.copyOf(profile); }
  }

  /**
   * The names of the units where parts begin after the first (the handbook's SPLIT_NODE), e.g. {@code [blocks.2]}
   * for two stages; a leading name of the first unit is allowed. Names may be groups ({@code layer2}).
   */
  record Customized(List<String> starts) implements SplitPolicy {
    public Customized { starts = List.copyOf(starts); }
  }

  /** Cuts {@code units} into {@code parts} parts; rejects impossible requests with the numbers. */
  static Split split(SplitPolicy policy, List<Unit> units, int parts) {
    List<String> names = units.stream().map(Unit::name).toList();
    if (!(policy instanceof Customized) && (parts < 1 || parts > units.size()))
      throw new IllegalArgumentException("cannot split " + units.size() + " units into " + parts
          + " pipeline parts: every part needs at least one unit (units: " + UnitNames.summary(names) + ")");
    return switch (policy) {
      case Uniform u -> new Split(names, uniformStarts(units.size(), parts));
      case Balanced b -> {
        double[] w = new double[units.size()];
        for (int i = 0; i < w.length; i++) w[i] = units.get(i).module().parameterCount();
        yield new Split(names, Partition.minMax(w.length, parts, Partition.sums(w)));
      }
      case Profiled p -> new Split(names, Partition.minMax(units.size(), parts, profiledCost(p, names)));
      case Customized c -> customized(c, names, parts);
    };
  }

  private static List<Integer> uniformStarts(int n, int k) {
    List<Integer> starts = new ArrayList<>();
    for (int i = 0, s = 0; i < k; s += n / k + (i < n % k ? 1 : 0), i++) starts.add(s);
    return starts;
  }

  private static Partition.RangeCost profiledCost(Profiled p, List<String> names) {
    List<String> profiled = p.profile().stream().map(UnitProfile::name).toList();
    if (!profiled.equals(names))
      throw new IllegalArgumentException("the profile describes units " + UnitNames.summary(profiled) + " but the model has " + UnitNames.summary(names));
    double[] time = new double[names.size()], mem = new double[names.size()];
    for (int i = 0; i < time.length; i++) {
      time[i] = p.profile().get(i).seconds();
      mem[i] = p.profile().get(i).memoryBytes();
    }
    Partition.RangeCost t = Partition.sums(time), m = Partition.sums(mem);
    double totalT = Math.max(t.of(0, time.length), 1e-30), totalM = Math.max(m.of(0, mem.length), 1);
    return (from, to) -> Math.max(t.of(from, to) / totalT, m.of(from, to) / totalM);
  }

  private static Split customized(Customized c, List<String> names, int parts) {
    List<String> given = c.starts();
    List<Integer> starts = new ArrayList<>();
    starts.add(0);
    for (int i = 0; i < given.size(); i++) {
      int at = UnitNames.resolve(given.get(i), names);
      if (i == 0 && at == 0) continue; // the first part's start may be written out
      starts.add(at);
    }
    if (starts.size() != parts)
      throw new IllegalArgumentException("the customized split " + given + " gives " + starts.size() + " parts but the pipeline needs "
          + parts + "; give the " + (parts - 1) + " unit names where parts 1.." + (parts - 1) + " begin");
    return new Split(names, starts);
  }
}
