package io.colossal4j.train;

import io.colossal4j.step.Batch;

import io.colossal4j.data.DataLoader;
import io.colossal4j.data.LoaderPosition;
import io.colossal4j.tensor.Rng;
import io.colossal4j.train.checkpoint.Checkpoint;
import io.colossal4j.train.checkpoint.CheckpointStore;
import io.colossal4j.train.checkpoint.StateDicts;
import io.colossal4j.train.checkpoint.TrainingState;
import io.colossal4j.train.precision.DynamicLossScaler;
import io.colossal4j.train.precision.MixedPrecision;
import io.colossal4j.train.metrics.EvalMetrics;
import io.colossal4j.train.metrics.StepMetrics;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The training loop: epochs over the loader, one {@link Engine#trainStep} per global batch, evaluation and
 * checkpoints on their schedules, everything reported to listeners. A run resumed from a checkpoint continues
 * exactly where the saved one stood: model, optimizer state and step, schedule, random streams and loader
 * position are all restored, so it reaches the same parameters as a run that never stopped.
 */
public final class Trainer {
  /** Checkpoint scalars holding the f16 loss scaler's state. */
  static final String LOSS_SCALE = "loss_scale", LOSS_SCALE_GOOD_STEPS = "loss_scale_good_steps";

  /** Loop settings resolved from the config. */
  public record Plan(String modelName, int epochs, long maxSteps, int evalEvery, int checkpointEvery, Path runDir) {}

  private final Engine engine;
  private final DataLoader train;
  private final DataLoader eval;
  private final CheckpointStore store;
  private final CheckpointLayout layout;
  private final Plan plan;
  private final List<TrainListener> listeners;
  private final EvalReducer evalReducer;
  private long step;
  private LoaderPosition position = LoaderPosition.start();
  private double bestAccuracy = Double.NaN;
  private volatile long stopAt = Long.MAX_VALUE;

  /** Combines evaluation sums {loss·n, correct, n} across the ranks that share the evaluation set. */
  @FunctionalInterface
  public interface EvalReducer { double[] reduce(double[] sums); }

  public Trainer(Engine engine, DataLoader train, DataLoader eval, CheckpointStore store, Plan plan, List<TrainListener> listeners) {
    this(engine, train, eval, store, CheckpointLayout.single(engine.model()), plan, listeners, sums -> sums);
  }

  /**
   * @param store  where checkpoints go (null: none); every rank gets it, only {@link CheckpointLayout#writes() the writer} writes
   * @param layout how this rank's state maps to the single-device checkpoint
   */
  public Trainer(Engine engine, DataLoader train, DataLoader eval, CheckpointStore store, CheckpointLayout layout, Plan plan,
                 List<TrainListener> listeners, EvalReducer evalReducer) {
    this.layout = layout;
    this.evalReducer = evalReducer;
    this.engine = engine;
    this.train = train;
    this.eval = eval;
    this.store = store;
    this.plan = plan;
    this.listeners = List.copyOf(listeners);
  }

  public long step() { return step; }

  public Engine engine() { return engine; }

  /**
   * Asks the loop to stop once {@code atStep} optimizer steps are done (a preemption: it saves a checkpoint
   * there, so a resumed run continues exactly). Thread-safe; a signal handler may call it.
   */
  public void stopAt(long atStep) { stopAt = atStep; }

  /** Whether a step's figures are read after the next step is queued; null: on an accelerator only. */
  private Boolean reportLate;

  /** Reads every step's figures a step late (true) or at once (false), whatever the device (tests; the default follows the device). */
  void reportLate(boolean late) { reportLate = late; }

  /**
   * Restores everything a checkpoint holds; the next {@link #run} continues from it. The checkpoint may come from
   * any layout (it holds the single-device state); a checkpoint of another model is rejected naming the
   * parameters that differ. Every rank calls it.
   */
  public void resume(Path checkpoint) {
    Checkpoint c = CheckpointStore.load(checkpoint, engine.model().parameters().getFirst().backend());
    TrainingState s = c.state();
    boolean sameModel = s.model().equals(plan.modelName());
    String what = "checkpoint " + checkpoint + " (of model '" + s.model() + "'" + (sameModel ? "" : ", this run trains '" + plan.modelName() + "'") + ")";
    if (!sameModel) {
      StateDicts.requireSpecs(layout.fullSpecs(), c.model(), what);   // names the parameters that differ, if any
      throw new IllegalArgumentException("checkpoint " + checkpoint + " is of model '" + s.model() + "', this run trains '" + plan.modelName() + "'");
    }
    try {
      layout.load(c, engine.optimizer(), s.scheduleStep(), what);   // updates applied (fewer than steps after f16 overflows)
    } finally {   // copied into the model and optimizer: the loaded tensors go back to the allocator now, not at a GC
      c.model().values().forEach(t -> t.storage().release());
      c.optimizer().values().forEach(t -> t.storage().release());
    }
    engine.resumeAt(s.step());
    if (engine.precision() instanceof MixedPrecision.Autocast16(var d, DynamicLossScaler scaler) && scaler != null) {
      Double scale = s.scalars().get(LOSS_SCALE), good = s.scalars().get(LOSS_SCALE_GOOD_STEPS);
      if (scale == null || good == null)
        throw new IllegalArgumentException("checkpoint " + checkpoint + " has no f16 loss-scaler state (" + LOSS_SCALE + "); it was saved by a run in another precision");
      scaler.restore(new DynamicLossScaler.State(scale, good.intValue()));
    }
    step = s.step();
    position = s.loader();
    bestAccuracy = s.scalars().getOrDefault("best_eval_accuracy", Double.NaN);
  }

  public TrainListener.Summary run() {
    long startNanos = System.nanoTime();
    samples = 0;
    lastLoss = Double.NaN;
    EvalMetrics lastEval = null;
    int steps = train.batchesPerEpoch();
    // On an accelerator a step's figures are read after the next step is queued, so the device never waits for
    // the host at a step boundary; before an evaluation, a checkpoint and the end, the pending step is reported first.
    boolean late = reportLate != null ? reportLate : engine.model().parameters().getFirst().device().kind() != io.colossal4j.tensor.Device.Kind.CPU;
    for (int epoch = position.epoch(); epoch < plan.epochs() && !done(); epoch++) {
      int first = epoch == position.epoch() ? position.batch() : 0;
      for (TrainListener l : listeners) l.onEpochStart(epoch, steps, first);
      Progress progress = new Progress(epoch, System.nanoTime());
      try (var it = train.from(new LoaderPosition(epoch, first))) {
        int k = first;
        while (it.hasNext() && !done()) {
          DataLoader.Batch b = it.next();
          Engine.PendingStep queued = engine.trainStepAsync(new Batch(b.inputs(), b.labels()));
          step++;
          k++;
          progress.report();   // the step before, now that this one is queued
          progress.pend(queued, step, k);
          position = b.next();
          boolean evalNow = plan.evalEvery() > 0 && step % plan.evalEvery() == 0;
          boolean saveNow = (plan.checkpointEvery() > 0 && step % plan.checkpointEvery() == 0) || (step == stopAt && it.hasNext());
          if (!late || evalNow || saveNow) progress.report();
          if (evalNow) lastEval = evaluate(epoch);
          if (saveNow) save();
        }
      }
      progress.report();
      if (plan.evalEvery() == 0) lastEval = evaluate(epoch);
      position = position.batch() >= steps ? new LoaderPosition(epoch + 1, 0) : position;
      if (plan.checkpointEvery() == 0) save();
      for (TrainListener l : listeners) l.onEpochEnd(epoch);
    }
    double seconds = (System.nanoTime() - startNanos) / 1e9;
    TrainListener.Summary s = new TrainListener.Summary(step, plan.epochs(), seconds, samples / Math.max(1e-9, seconds), lastLoss,
        lastEval == null ? Double.NaN : lastEval.accuracy(), lastEval == null ? Double.NaN : lastEval.loss(), bestAccuracy, plan.runDir());
    for (TrainListener l : listeners) l.onEnd(s);
    return s;
  }

  /** The current run's samples so far and its last reported loss (reset by {@link #run}, updated by {@link Progress#report}). */
  private long samples;
  private double lastLoss = Double.NaN;

  /** One epoch's running figures, and the step whose figures are not read yet. */
  private final class Progress {
    private final int epoch;
    private final long start;
    private long epochSamples, correct;
    private Engine.PendingStep pending;
    private long pendingStep;
    private int pendingIndex;

    Progress(int epoch, long start) {
      this.epoch = epoch;
      this.start = start;
    }

    void pend(Engine.PendingStep p, long stepNumber, int index) {
      pending = p;
      pendingStep = stepNumber;
      pendingIndex = index;
    }

    /** Reads the pending step's figures (waiting for them) and tells the listeners; nothing when none is pending. */
    void report() {
      if (pending == null) return;
      Engine.StepResult r = pending.result();
      pending = null;
      samples += r.samples();
      epochSamples += r.samples();
      correct += r.correct();
      lastLoss = r.loss();
      double sps = epochSamples / Math.max(1e-9, (System.nanoTime() - start) / 1e9);
      StepMetrics m = new StepMetrics(pendingStep, epoch, r.loss(), r.lr(), sps, correct / (double) epochSamples);
      for (TrainListener l : listeners) l.onStep(m, pendingIndex);
    }
  }

  private boolean done() { return (plan.maxSteps() > 0 && step >= plan.maxSteps()) || step >= stopAt; }

  /** Loss and top-1 accuracy over the whole evaluation set. */
  public EvalMetrics evaluate(int epoch) {
    double lossSum = 0;
    long correct = 0, n = 0;
    try (var it = eval.epoch(0)) {
      while (it.hasNext()) {
        DataLoader.Batch b = it.next();
        Engine.StepResult r = engine.evalStep(new Batch(b.inputs(), b.labels()));
        lossSum += r.loss() * r.samples();
        correct += r.correct();
        n += r.samples();
      }
    }
    double[] sums = evalReducer.reduce(new double[] {lossSum, correct, n});
    EvalMetrics m = new EvalMetrics(step, epoch, sums[0] / sums[2], sums[1] / sums[2]);
    if (Double.isNaN(bestAccuracy) || m.accuracy() > bestAccuracy) bestAccuracy = m.accuracy();
    for (TrainListener l : listeners) l.onEval(m);
    return m;
  }

  /** Gathers the single-device state (collective), the writer saves it, and every rank learns that it did. */
  private void save() {
    if (store == null) return;
    Optional<CheckpointLayout.State> full = layout.gather(engine.optimizer());
    Path saved = null;
    try {
      if (full.isPresent()) saved = store.save(new Checkpoint(full.get().model(), full.get().optimizer(), trainingState(full.get().rngs())));
    } finally {
      layout.agree(saved != null || full.isEmpty(), step);
    }
    if (saved != null) for (TrainListener l : listeners) l.onCheckpoint(saved);
  }

  private TrainingState trainingState(Map<String, Rng.State> rngs) {
    Map<String, Double> scalars = new LinkedHashMap<>();
    if (!Double.isNaN(bestAccuracy)) scalars.put("best_eval_accuracy", bestAccuracy);
    if (engine.precision() instanceof MixedPrecision.Autocast16(var d, DynamicLossScaler scaler) && scaler != null) {
      scalars.put(LOSS_SCALE, scaler.state().scale());
      scalars.put(LOSS_SCALE_GOOD_STEPS, (double) scaler.state().goodSteps());
    }
    return new TrainingState(plan.modelName(), step, engine.optimizer().steps(), position, rngs, scalars);
  }
}
