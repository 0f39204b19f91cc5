package io.colossal4j.train;

import io.colossal4j.backend.Backend;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.backend.cuda.CudaBackend;
import io.colossal4j.backend.cuda.CudaOptions;
import io.colossal4j.data.DataLoader;
import io.colossal4j.data.Dataset;
import io.colossal4j.data.Split;
import io.colossal4j.distributed.MeshAxis;
import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.nn.ModuleContext;
import io.colossal4j.nn.UnitModel;
import io.colossal4j.ops.Loss;
import io.colossal4j.optim.LrSchedule;
import io.colossal4j.optim.Optimizer;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Device;
import io.colossal4j.train.checkpoint.CheckpointStore;
import io.colossal4j.train.config.CheckpointConfig;
import io.colossal4j.train.config.ConfigException;
import io.colossal4j.train.config.DataSources;
import io.colossal4j.train.config.DeviceConfig;
import io.colossal4j.train.config.LoggingConfig;
import io.colossal4j.train.config.RunConfig;
import io.colossal4j.train.config.TrainConfig;
import io.colossal4j.train.precision.MixedPrecision;
import io.colossal4j.train.metrics.ConsoleProgress;
import io.colossal4j.train.metrics.RunReporter;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Assembles a run from a validated config on this process: backend, data (sharded over data-parallel ranks),
 * model, the parallel plans applied from outside (data parallelism today; tensor and pipeline plans plug in at
 * {@link #parallelize}), optimizer, schedule, engine, checkpoints and the report. Everything the config says is
 * checked before the first step.
 */
public final class TrainJob implements AutoCloseable {
  private final RunConfig config;
  private final Layout layout;
  private final Backend backend;
  private final boolean ownsBackend;
  private final DataLoader trainLoader;
  private final DataLoader evalLoader;
  private final UnitModel model;
  private final Trainer trainer;
  private final ConsoleReport reporter;
  private final TrainListener.RunInfo info;

  public TrainJob(RunConfig config, Map<String, String> environment, boolean interactive, PrintStream out) {
    this(config, Optional.empty(), environment, interactive, out);
  }

  public TrainJob(RunConfig config, Optional<ProcessGroup> world, Map<String, String> environment, boolean interactive, PrintStream out) {
    this(config, world, Optional.empty(), environment, interactive, out);
  }

  /**
   * With {@code given} the backend this rank trains on (a GPU job opens its rank's {@code cuda:LOCAL_RANK} before
   * the NCCL group it needs); it stays the caller's to close. Empty: the job opens (and closes) the config's device.
   */
  public TrainJob(RunConfig config, Optional<ProcessGroup> world, Optional<Backend> given, Map<String, String> environment, boolean interactive, PrintStream out) {
    this.config = config;
    this.layout = Layout.of(config, world);
    Dataset train = DataSources.open(config.data(), Split.TRAIN, config.seed());
    Dataset test = DataSources.open(config.data(), Split.TEST, config.seed());
    this.ownsBackend = given.isEmpty();
    this.backend = given.orElseGet(() -> backend(config.device(), environment, layout.worldSize()));
    int dp = layout.size(MeshAxis.DP), dpRank = layout.coordinate(MeshAxis.DP);
    this.trainLoader = DataSources.loader(config, train, Split.TRAIN, backend, dpRank, dp, layout.batch().perRankBatch());
    this.evalLoader = DataSources.loader(config, test, Split.TEST, backend, dpRank, dp, Math.max(layout.batch().perRankBatch(), 256));
    int channels = train.sampleShape().dim(0), image = config.data().imageSize().orElse(train.sampleShape().dim(-1));
    this.model = Builders.model(config.model(), new ModuleContext(backend, DType.F32, config.seed()), train.numClasses(), channels, image);
    HybridPlan par;
    try {
      par = HybridPlan.apply(model, layout.mesh(), HybridPlan.Options.defaults(HybridPlan.schedule(config.parallel().schedule())));
    } catch (IllegalArgumentException e) {
      throw new ConfigException("parallel", e.getMessage());
    }
    Optimizer optimizer = Builders.optimizer(config.optimizer(), par.local().namedParameters());
    long stepsPerEpoch = trainLoader.batchesPerEpoch();
    long total = config.train().maxSteps() > 0 ? Math.min(config.train().maxSteps(), stepsPerEpoch * config.train().epochs()) : stepsPerEpoch * config.train().epochs();
    LrSchedule schedule = Builders.schedule(config.schedule(), config.optimizer().lr(), total);
    var ce = Loss.CrossEntropyOptions.DEFAULT.withLabelSmoothing(config.train().labelSmoothing());
    Engine engine = new Engine(par.local(), optimizer, (o, y) -> Loss.crossEntropy(o, y, ce), schedule,
        layout.batch().accumulation() * layout.batch().microBatches(), config.train().clipGradNorm(), par.hooks(), par.schedule())
        .withPrecision(precision(config.train().precision(), layout, out));
    this.reporter = layout.reports() ? new ConsoleReport(new RunReporter(config.runDir(), progress(config.logging(), interactive, out), out,
        new RunReporter.Options(config.logging().tensorboard(), config.logging().plot(), config.logging().every())), out) : null;
    // one single-device checkpoint for every layout: gathered over tp and pp, written by world rank 0
    CheckpointStore store = new CheckpointStore(config.checkpointDir(), config.checkpoint().keep());
    this.trainer = new Trainer(engine, trainLoader, evalLoader, store, CheckpointLayout.of(model, par.local(), layout.mesh()),
        new Trainer.Plan(config.model().name(), config.train().epochs(), config.train().maxSteps(), config.train().evalEvery(), config.checkpoint().every(), config.runDir()),
        reporter == null ? List.of() : List.of(reporter), evalReducer());
    resume(config.checkpoint(), new CheckpointStore(config.checkpointDir(), config.checkpoint().keep()));
    this.info = new TrainListener.RunInfo("colossal4j · " + config.name(), describe(train, test, total), config.train().epochs());
  }

  /** Evaluation sums (loss·n, correct, n) over the data-parallel ranks, so every rank reports the whole test set. */
  private Trainer.EvalReducer evalReducer() {
    return layout.group(MeshAxis.DP).<Trainer.EvalReducer>map(g -> sums -> {
      var t = io.colossal4j.tensor.Tensor.of(sums, io.colossal4j.tensor.Shape.of(sums.length), DType.F64, backend);
      g.allReduce(t, io.colossal4j.distributed.Reduction.SUM);
      return t.toDoubleArray();
    }).orElse(sums -> sums);
  }

  private void resume(CheckpointConfig c, CheckpointStore store) {
    switch (c.resume()) {
      case CheckpointConfig.Resume.None n -> { }
      case CheckpointConfig.Resume.Latest l -> store.latest().ifPresent(trainer::resume);
      case CheckpointConfig.Resume.From f -> trainer.resume(f.checkpoint());
    }
  }

  private List<String> describe(Dataset train, Dataset test, long total) {
    List<String> lines = new ArrayList<>();
    lines.add("model: " + config.model().name() + String.format(", %,d parameters", model.parameterCount()));
    lines.add("data: " + train.describe() + "; eval on " + test.describe());
    lines.add("device: " + backend.name() + (backend instanceof CpuBackend c ? ", " + c.parallel().threads() + " threads per process" : ""));
    lines.add("layout: " + layout.describe());
    for (String g : layout.groups()) lines.add(g.replaceFirst(" groups:", " groups: "));
    lines.add("batch: " + layout.batch());
    lines.add("optimizer: " + config.optimizer().getClass().getSimpleName().toLowerCase() + String.format(", lr %.3g", config.optimizer().lr())
        + ", schedule " + config.schedule().getClass().getSimpleName().toLowerCase());
    lines.add("steps: " + trainLoader.batchesPerEpoch() + " per epoch x " + config.train().epochs() + " epochs = " + total);
    lines.add("run dir: " + config.runDir());
    return lines;
  }

  /**
   * Obtains the config's data set where the machine allows it (Fashion-MNIST from Debian's package when it is
   * missing). Called once, before any rank starts, so ranks never race to install it.
   */
  public static void obtainData(RunConfig config, PrintStream out) {
    if (config.data().name() == io.colossal4j.train.config.DataConfig.Name.FASHION_MNIST)
      FashionMnistInstall.installIfMissing(config.data().path().orElse(DataSources.defaultPath(config.data().name())), out);
  }

  /**
   * The config's {@code train.precision} as a policy (the model is built with f32 master weights). f16 with
   * tensor or pipeline parallelism was rejected when the config was read ({@link RunConfig}); with data
   * parallelism every rank sees the same all-reduced gradients, so all skip the same steps. Overflows are
   * printed by the reporting rank.
   */
  static MixedPrecision precision(TrainConfig.Precision p, Layout layout, PrintStream out) {
    return switch (p) {
      case FP32 -> MixedPrecision.full();
      case BF16 -> MixedPrecision.bf16();
      case FP16 -> {
        boolean report = layout.reports();
        yield MixedPrecision.fp16(s -> { if (report) out.println("fp16 overflow: " + s.describe()); });
      }
    };
  }

  /** The backend; CPU threads default to the cores divided among the processes of this machine. */
  static Backend backend(DeviceConfig d, Map<String, String> environment, int processes) {
    return switch (d.kind()) {
      case CPU -> CpuBackend.create(d.threads() > 0 ? d.threads() : Math.max(1, Runtime.getRuntime().availableProcessors() / processes));
      case CUDA -> CudaBackend.open(Device.cuda(0), cudaOptions(d, environment));
    };
  }

  /** The CUDA options a config asks for: its memory cap, kernels cached in the default folder. */
  public static CudaOptions cudaOptions(DeviceConfig d, Map<String, String> environment) {
    long cap = d.maxMemory().map(m -> m.bytes()).orElse(Long.MAX_VALUE);
    return new CudaOptions(environment, cap, CudaOptions.defaults(environment).kernelCacheDir());
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
    if (reporter != null) reporter.onStart(info);
    return trainer.run();
  }

  public Trainer trainer() { return trainer; }

  public UnitModel model() { return model; }

  public Layout layout() { return layout; }

  @Override public void close() {
    if (reporter != null) reporter.close();
    trainLoader.close();
    evalLoader.close();
    if (ownsBackend) backend.close();
  }
}
