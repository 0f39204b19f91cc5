package io.colossal4j.train.metrics;

import java.util.ArrayList;
import java.util.List;

/** The metrics of a run kept in memory for the plot and the summary. A later record for a step replaces an earlier one (a resumed run repeats steps). */
public final class History {
  private final List<StepMetrics> steps = new ArrayList<>();
  private final List<EvalMetrics> evals = new ArrayList<>();

  public void add(StepMetrics m) {
    while (!steps.isEmpty() && steps.getLast().step() >= m.step()) steps.removeLast();
    steps.add(m);
  }

  public void add(EvalMetrics m) {
    while (!evals.isEmpty() && evals.getLast().step() >= m.step()) evals.removeLast();
    evals.add(m);
  }

  public List<StepMetrics> steps() { return List.copyOf(steps); }

  public List<EvalMetrics> evals() { return List.copyOf(evals); }
}
