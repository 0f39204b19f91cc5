package io.colossal4j.train.metrics;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;

/**
 * Everything a run reports, behind the calls a trainer makes: the console progress (running means of loss and
 * accuracy over the epoch), {@code <runDir>/metrics.jsonl}, TensorBoard event files in {@code <runDir>/tensorboard},
 * and at the end {@code <runDir>/curves.png} and a summary table. Step metrics go to the files every {@code every}
 * steps and at the end of each epoch; evaluations always. A resumed run appends to the same metrics file and its
 * plot covers the whole history. Not thread-safe; call from the training thread.
 */
public final class RunReporter implements AutoCloseable {
  public static final String METRICS = "metrics.jsonl", PLOT = "curves.png", TENSORBOARD = "tensorboard";

  /** What to write: {@code every} >= 1 steps between logged steps. */
  public record Options(boolean tensorboard, boolean plot, int every) {
    public Options {
      if (every < 1) throw new IllegalArgumentException("logging every must be >= 1, got " + every);
    }
  }

  private final Path runDir;
  private final ConsoleProgress progress;
  private final PrintStream console;
  private final Options options;
  private final MetricsLog log;
  private final TensorBoardWriter tb;
  private final History history;
  private int epochBatches;
  private int seen;
  private double lossSum, accSum;
  private int accCount;

  public RunReporter(Path runDir, ConsoleProgress progress, PrintStream console, Options options) {
    this.runDir = runDir;
    this.progress = progress;
    this.console = console;
    this.options = options;
    this.history = MetricsLog.read(runDir.resolve(METRICS));
    this.log = new MetricsLog(runDir.resolve(METRICS));
    this.tb = options.tensorboard() ? new TensorBoardWriter(runDir.resolve(TENSORBOARD)) : null;
  }

  public Path runDir() { return runDir; }

  public History history() { return history; }

  public Optional<Path> eventFile() { return tb == null ? Optional.empty() : Optional.of(tb.file()); }

  /** Epoch {@code epoch} (0-based) of {@code epochs} with {@code batches} batches, of which {@code done} were run before a resume. */
  public void startEpoch(int epoch, int epochs, int batches, int done) {
    epochBatches = batches;
    seen = done;
    lossSum = accSum = 0;
    accCount = 0;
    progress.startEpoch(epoch, epochs, batches, done);
  }

  /** After each optimizer step; {@code batchDone} is the 1-based batch count within the epoch. */
  public void step(StepMetrics m, int batchDone) {
    lossSum += m.loss();
    if (!Double.isNaN(m.accuracy())) { accSum += m.accuracy(); accCount++; }
    int n = batchDone - seen;
    progress.update(batchDone, lossSum / Math.max(1, n), accCount == 0 ? Double.NaN : accSum / accCount, m.samplesPerS());
    if (m.step() % options.every() == 0 || batchDone == epochBatches) {
      log.step(m);
      history.add(m);
      if (tb != null) {
        tb.scalar("train/loss", m.loss(), m.step());
        tb.scalar("train/lr", m.lr(), m.step());
        tb.scalar("train/samples_per_s", m.samplesPerS(), m.step());
        if (!Double.isNaN(m.accuracy())) tb.scalar("train/accuracy", m.accuracy(), m.step());
      }
    }
  }

  public void eval(EvalMetrics m) {
    log.eval(m);
    history.add(m);
    if (tb != null) {
      tb.scalar("eval/loss", m.loss(), m.step());
      tb.scalar("eval/accuracy", m.accuracy(), m.step());
    }
  }

  /** Closes the epoch's progress line, printing {@code note} (e.g. the evaluation result) under it. */
  public void endEpoch(String note) { progress.endEpoch(note); }

  /** {@code eval loss 0.3120  eval accuracy 88.41%}, for {@link #endEpoch}. */
  public static String describe(EvalMetrics m) {
    return String.format(Locale.ROOT, "  eval loss %.4f  eval accuracy %.2f%%", m.loss(), 100 * m.accuracy());
  }

  /**
   * Writes the plot (if enabled), prints the summary: {@code rows} from the trainer (accuracy, time, throughput)
   * followed by where the files are. Returns the table.
   */
  public String finish(String title, List<SummaryTable.Row> rows) {
    List<SummaryTable.Row> all = new ArrayList<>(rows);
    all.add(new SummaryTable.Row("metrics", runDir.resolve(METRICS).toString()));
    if (tb != null) all.add(new SummaryTable.Row("tensorboard", "tensorboard --logdir " + (runDir.getParent() == null ? "." : runDir.getParent())));
    if (options.plot()) {
      CurvePlot.write(runDir.resolve(PLOT), history);
      all.add(new SummaryTable.Row("plot", runDir.resolve(PLOT).toString()));
    }
    String table = SummaryTable.render(title, all);
    console.print(table);
    console.flush();
    return table;
  }

  @Override public void close() {
    log.close();
    if (tb != null) tb.close();
  }
}
