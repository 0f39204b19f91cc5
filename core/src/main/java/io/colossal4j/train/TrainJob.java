package io.colossal4j.train;

import io.colossal4j.backend.Backend;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.backend.cuda.CudaBackend;
import io.colossal4j.backend.cuda.CudaOptions;
import io.colossal4j.data.DataLoader;
import io.colossal4j.data.Sampler;
import io.colossal4j.nn.ModuleContext;
import io.colossal4j.nn.UnitModel;
import io.colossal4j.ops.Loss;
import io.colossal4j.optim.LrSchedule;
import io.colossal4j.optim.Optimizer;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Device;
import io.colossal4j.train.checkpoint.CheckpointStore;
import io.colossal4j.train.config.CheckpointConfig;
import io.colossal4j.train.config.DeviceConfig;
import io.colossal4j.train.config.LoggingConfig;
import io.colossal4j.train.config.RunConfig;
import io.colossal4j.train.metrics.ConsoleProgress;
import io.colossal4j.train.metrics.RunReporter;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Assembles a single-process run from a validated config: backend, data, model, optimizer, schedule, engine,
 * checkpoint store, reporter, trainer. Everything the config says is checked before the first step.
 */
public final class TrainJob implements AutoCloseable {
  private final RunConfig config;
  private final Backend backend;
  private final DataLoader trainLoader;
  private final DataLoader evalLoader;
  private final UnitModel model;
  private final Trainer trainer;
  private final ConsoleReport reporter;
  private final TrainListener.RunInfo info;

  public TrainJob(RunConfig config, Map<String, String> environment, boolean interactive, PrintStream out) {
    this.config = config;
    RunConfig.BatchPlan batch = config.plan(1);
    DataSetup.Sets sets = DataSetup.load(config.data(), config.seed(), out);
    this.backend = backend(config.device(), environment);
    int workers = config.data().numWorkers(), prefetch = config.data().prefetch();
    this.trainLoader = new DataLoader(sets.train(), Sampler.shuffled(sets.train().size(), config.seed()), DataSetup.trainTransform(config.data(), sets),
        backend, new DataLoader.Options(batch.perRankBatch(), true, workers, prefetch, config.seed()));
    this.evalLoader = new DataLoader(sets.test(), Sampler.sequential(sets.test().size()), DataSetup.evalTransform(config.data(), sets),
        backend, new DataLoader.Options(Math.max(batch.perRankBatch(), 256), false, workers, prefetch, config.seed()));
    int imageSize = config.data().imageSize().orElse(sets.imageSize());
    this.model = Builders.model(config.model(), new ModuleContext(backend, DType.F32, config.seed()), sets.train().numClasses(), sets.channels(), imageSize);
    Optimizer optimizer = Builders.optimizer(config.optimizer(), model.namedParameters());
    long stepsPerEpoch = trainLoader.batchesPerEpoch();
    long total = config.train().maxSteps() > 0 ? Math.min(config.train().maxSteps(), stepsPerEpoch * config.train().epochs()) : stepsPerEpoch * config.train().epochs();
    LrSchedule schedule = Builders.schedule(config.schedule(), config.optimizer().lr(), total);
    var ce = Loss.CrossEntropyOptions.DEFAULT.withLabelSmoothing(config.train().labelSmoothing());
    Engine engine = new Engine(model, optimizer, (out1, y) -> Loss.crossEntropy(out1, y, ce), schedule,
        batch.accumulation(), config.train().clipGradNorm(), new Engine.StepHooks() {}, MicroBatchSchedule.SEQUENTIAL);
    this.reporter = new ConsoleReport(new RunReporter(config.runDir(), progress(config.logging(), interactive, out), out,
        new RunReporter.Options(config.logging().tensorboard(), config.logging().plot(), config.logging().every())), out);
    CheckpointStore store = new CheckpointStore(config.checkpointDir(), config.checkpoint().keep());
    String modelName = config.model().name();
    this.trainer = new Trainer(engine, trainLoader, evalLoader, store,
        new Trainer.Plan(modelName, config.train().epochs(), config.train().maxSteps(), config.train().evalEvery(), config.checkpoint().every(), config.runDir()),
        List.of(reporter));
    resume(config.checkpoint(), store);
    this.info = new TrainListener.RunInfo("colossal4j · " + config.name(), describe(sets, batch, total), config.train().epochs(), (int) stepsPerEpoch, total);
  }

  private void resume(CheckpointConfig c, CheckpointStore store) {
    switch (c.resume()) {
      case CheckpointConfig.Resume.None n -> { }
      case CheckpointConfig.Resume.Latest l -> store.latest().ifPresent(trainer::resume);
      case CheckpointConfig.Resume.From f -> trainer.resume(f.checkpoint());
    }
  }

  private List<String> describe(DataSetup.Sets sets, RunConfig.BatchPlan batch, long total) {
    List<String> lines = new ArrayList<>();
    lines.add("model: " + config.model().name() + String.format(", %,d parameters", model.parameterCount()));
    lines.add("data: " + sets.train().describe() + "; eval on " + sets.test().describe());
    lines.add("device: " + backend.name() + (backend instanceof CpuBackend c ? ", " + c.parallel().threads() + " threads" : ""));
    lines.add("layout: 1 process (data 1 x tensor 1 x pipeline 1)");
    lines.add("batch: " + batch);
    lines.add("optimizer: " + config.optimizer().getClass().getSimpleName().toLowerCase() + String.format(", lr %.3g", config.optimizer().lr())
        + ", schedule " + config.schedule().getClass().getSimpleName().toLowerCase());
    lines.add("steps: " + trainLoader.batchesPerEpoch() + " per epoch x " + config.train().epochs() + " epochs = " + total);
    lines.add("run dir: " + config.runDir());
    return lines;
  }

  static Backend backend(DeviceConfig d, Map<String, String> environment) {
    return switch (d.kind()) {
      case CPU -> CpuBackend.create(d.threadsOn(Runtime.getRuntime().availableProcessors()));
      case CUDA -> {
        var defaults = CudaOptions.defaults(environment);
        long cap = d.maxMemory().map(m -> m.bytes()).orElse(Long.MAX_VALUE);
        yield CudaBackend.open(Device.cuda(0), new CudaOptions(environment, cap, defaults.kernelCacheDir()));
      }
    };
  }

  private static ConsoleProgress progress(LoggingConfig l, boolean interactive, PrintStream out) {
    ConsoleProgress.Mode mode = switch (l.progress()) {
      case AUTO -> interactive ? ConsoleProgress.Mode.BAR : ConsoleProgress.Mode.PLAIN;
      case BAR -> ConsoleProgress.Mode.BAR;
      case PLAIN -> ConsoleProgress.Mode.PLAIN;
      case OFF -> ConsoleProgress.Mode.OFF;
    };
    return new ConsoleProgress(out, mode, System::nanoTime, 10_000_000_000L);
  }

  public TrainListener.Summary run() {
    reporter.onStart(info);
    return trainer.run();
  }

  public Trainer trainer() { return trainer; }

  public UnitModel model() { return model; }

  @Override public void close() {
    reporter.close();
    trainLoader.close();
    evalLoader.close();
    backend.close();
  }
}
