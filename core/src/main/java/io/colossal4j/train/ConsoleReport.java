package io.colossal4j.train;

import io.colossal4j.train.metrics.ConsoleProgress;
import io.colossal4j.train.metrics.EvalMetrics;
import io.colossal4j.train.metrics.RunReporter;
import io.colossal4j.train.metrics.StepMetrics;
import io.colossal4j.train.metrics.SummaryTable;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The trainer's events turned into what a person watches and what a run leaves behind, through
 * {@link RunReporter}: a header table, a progress bar per epoch, metrics.jsonl, TensorBoard events, the
 * plot and a summary. Only the reporting rank (rank 0) has one.
 */
public final class ConsoleReport implements TrainListener, AutoCloseable {
  private final RunReporter reporter;
  private final PrintStream out;
  private int epochs;
  private String lastEval = "";
  private Path lastCheckpoint;

  public ConsoleReport(RunReporter reporter, PrintStream out) {
    this.reporter = reporter;
    this.out = out;
  }

  @Override public void onStart(RunInfo info) {
    epochs = info.epochs();
    List<SummaryTable.Row> rows = new ArrayList<>();
    for (String line : info.lines()) {
      int colon = line.indexOf(':');
      rows.add(colon < 0 ? new SummaryTable.Row(line, "") : new SummaryTable.Row(line.substring(0, colon), line.substring(colon + 1).trim()));
    }
    out.print(SummaryTable.render(info.title(), rows));
    out.flush();
  }

  @Override public void onEpochStart(int epoch, int stepsInEpoch, int stepsDone) { reporter.startEpoch(epoch, epochs, stepsInEpoch, stepsDone); }

  @Override public void onStep(StepMetrics m, int stepInEpoch) { reporter.step(m, stepInEpoch); }

  @Override public void onEval(EvalMetrics m) {
    reporter.eval(m);
    lastEval = RunReporter.describe(m);
  }

  @Override public void onEpochEnd(int epoch) {
    reporter.endEpoch(lastEval);
    lastEval = "";
  }

  @Override public void onCheckpoint(Path path) { lastCheckpoint = path; }

  @Override public void onEnd(Summary s) {
    List<SummaryTable.Row> rows = new ArrayList<>();
    rows.add(new SummaryTable.Row("test accuracy", Double.isNaN(s.evalAccuracy()) ? "-"
        : String.format(Locale.ROOT, "%.2f%% (best %.2f%%)", 100 * s.evalAccuracy(), 100 * s.bestEvalAccuracy())));
    rows.add(new SummaryTable.Row("test loss", Double.isNaN(s.evalLoss()) ? "-" : String.format(Locale.ROOT, "%.4f", s.evalLoss())));
    rows.add(new SummaryTable.Row("final train loss", String.format(Locale.ROOT, "%.4f", s.finalLoss())));
    rows.add(new SummaryTable.Row("steps / epochs", s.steps() + " / " + s.epochs()));
    rows.add(new SummaryTable.Row("wall time", ConsoleProgress.duration(s.seconds())));
    rows.add(new SummaryTable.Row("throughput", String.format(Locale.ROOT, "%.1f samples/s", s.samplesPerS())));
    if (lastCheckpoint != null) rows.add(new SummaryTable.Row("checkpoint", lastCheckpoint.toString()));
    reporter.finish("summary", rows);
  }

  @Override public void close() { reporter.close(); }
}
