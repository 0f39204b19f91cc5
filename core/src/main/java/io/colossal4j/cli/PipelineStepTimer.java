package io.colossal4j.cli;

import io.colossal4j.autograd.Autograd;
import io.colossal4j.autograd.GradMode;
import io.colossal4j.backend.Backend;
import io.colossal4j.backend.cuda.CudaBackend;
import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.models.ModelSpec;
import io.colossal4j.models.Zoo;
import io.colossal4j.models.gpt.Gpt;
import io.colossal4j.models.vit.VisionTransformer;
import io.colossal4j.nn.ModuleContext;
import io.colossal4j.nn.Unit;
import io.colossal4j.nn.UnitModel;
import io.colossal4j.ops.Arith;
import io.colossal4j.ops.Loss;
import io.colossal4j.ops.Views;
import io.colossal4j.optim.Adam;
import io.colossal4j.optim.LrSchedule;
import io.colossal4j.optim.Optimizer;
import io.colossal4j.optim.ParamGroup;
import io.colossal4j.parallel.pipeline.PipelineRunner;
import io.colossal4j.parallel.pipeline.Schedule;
import io.colossal4j.parallel.pipeline.Split;
import io.colossal4j.parallel.pipeline.SplitPolicy;
import io.colossal4j.parallel.pipeline.Stage;
import io.colossal4j.parallel.pipeline.Timeline;
import io.colossal4j.step.Batch;
import io.colossal4j.step.LossFunction;
import io.colossal4j.step.StepHooks;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.MemoryCategory;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.train.Engine;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Random;
import java.util.Set;

/**
 * One pipeline rank of {@link NcclPpBench}: builds the model, keeps its stage (the other stages' parameters are
 * released, so the peak memory is the stage's), runs warm-up and measured training steps through the {@link Engine}
 * and {@link PipelineRunner} as the trainer does, then times the same stage alone on the same micro-batches (its
 * busy time). Used by one thread; every rank of the group runs one at the same time.
 */
final class PipelineStepTimer {
  /**
   * This rank's numbers: mean step and schedule milliseconds, busy milliseconds alone and inside the pipeline (its
   * actions' intervals, CUDA events on a GPU), peak bytes in use during the steps.
   */
  record Result(double stepMs, double schedMs, double busyMs, double busyInPipelineMs, long peakBytes, int samples, String split,
                List<String> splitStarts) {}

  private static final int CLASSES = 1000;
  private final ProcessGroup group;
  private final Backend backend;
  private final String name;
  private final Schedule schedule;
  private final NcclPpBench.Options options;

  PipelineStepTimer(ProcessGroup group, Backend backend, String name, Schedule schedule, NcclPpBench.Options options) {
    this.group = group;
    this.backend = backend;
    this.name = name;
    this.schedule = schedule;
    this.options = options;
  }

  /** Marks the end of the schedule's part of a step (the engine calls it before the optimizer). */
  private final class Marks implements StepHooks {
    long scheduleEnd;

    @Override public void beforeStep() {
      backend.synchronize();
      scheduleEnd = System.nanoTime();
    }

    @Override public Tensor gradSquaredNorm(List<Tensor> params) {   // no clipping, as the PyTorch side: no norm to form
      Tensor zero = Tensor.empty(io.colossal4j.tensor.Shape.of(1), io.colossal4j.tensor.DType.F64, backend, io.colossal4j.tensor.MemoryCategory.TEMPORARY);
      backend.kernels().fill(zero, 0);
      return zero;
    }
  }

  Result run() {
    UnitModel model = Zoo.build(new ModuleContext(backend, backend instanceof CudaBackend ? DType.BF16 : DType.F32, 0), ModelSpec.of(name, CLASSES));
    int parts = 2 * schedule.chunks(), m = options.microBatches();
    List<String> starts = starts(model, parts);
    Split split = SplitPolicy.split(new SplitPolicy.Customized(starts), model.units(), parts);
    Stage stage = Stage.of(model, split, 2, group.rank());
    Batch batch = batch(model);
    List<Batch> micro = batch.split(m);
    Tensor[] partInputs = partInputs(model, split, micro.getFirst());
    Set<Tensor> mine = Collections.newSetFromMap(new IdentityHashMap<>());
    mine.addAll(stage.parameters());
    for (Tensor p : model.parameters()) if (!mine.contains(p)) p.storage().release();
    if (backend instanceof CudaBackend c) c.emptyCache();
    Marks marks = new Marks();
    Optimizer adamw = Adam.adamW(ParamGroup.single(stage.namedParameters(), 0.1));
    PipelineRunner runner = new PipelineRunner(group, stage, schedule);
    Engine engine = new Engine(stage, adamw, loss(), new LrSchedule.Constant(1e-4), m, 0, marks, runner);
    for (int i = 0; i < options.warmup(); i++) engine.trainStep(batch);
    if (backend instanceof CudaBackend c) c.resetPeakMemory();
    DeviceSpans events = backend instanceof CudaBackend c ? new DeviceSpans(c) : null;
    Timeline timeline = new Timeline(events);
    runner.record(timeline);
    long step = 0, sched = 0;
    double inPipeline = 0;
    for (int i = 0; i < options.steps(); i++) {
      group.barrier();
      backend.synchronize();
      long t0 = System.nanoTime();
      engine.trainStep(batch);
      backend.synchronize();
      step += System.nanoTime() - t0;
      sched += marks.scheduleEnd - t0;
      inPipeline += events != null ? events.busyMillis() : timeline.busyNanos() / 1e6;   // on the CPU the host clock is the device's
    }
    runner.record(null);
    long peak = backend instanceof CudaBackend c ? c.peakMemoryInUse() : backend.memoryStats().peak().values().stream().mapToLong(Long::longValue).sum();
    double busy = alone(stage, micro, partInputs);
    release(model, adamw);
    if (backend instanceof CudaBackend c) c.emptyCache();
    return new Result(step / 1e6 / options.steps(), sched / 1e6 / options.steps(), busy, inPipeline / options.steps(), peak, batch.size(), split.toString(), starts);
  }

  /**
   * Where parts 1.. begin: the blocks cut so that every part holds equal work, an LM head counting as
   * vocab / (12 · width) blocks (its matmul against a block's 12·width² multiply-adds per token). The Python
   * script computes the same cuts (rounding half up).
   */
  static List<String> starts(UnitModel model, int parts) {
    List<Unit> units = model.units();
    List<Integer> blocks = new ArrayList<>();
    for (int i = 0; i < units.size(); i++) if (units.get(i).name().matches("(blocks|transformer\\.h)\\.\\d+")) blocks.add(i);
    if (blocks.size() < parts) throw new IllegalArgumentException(model.getClass().getSimpleName() + " has " + blocks.size() + " blocks, fewer than the " + parts + " parts");
    double head = model instanceof Gpt g ? g.config().vocabSize() / (12.0 * g.config().nEmbd()) : 0;
    double total = blocks.size() + head;
    List<String> out = new ArrayList<>();
    for (int k = 1; k < parts; k++) {
      int cut = Math.min(blocks.size() - (parts - k), Math.max(k, (int) Math.floor(k * total / parts + 0.5)));
      out.add(units.get(blocks.get(cut)).name());
    }
    return out;
  }

  /** The global batch: images of the ViT's size with labels, or token ids with next-token targets (b × T). */
  private Batch batch(UnitModel model) {
    Random r = new Random(3);
    return switch (model) {
      case Gpt g -> {
        Shape s = Shape.of(options.sequences(), g.config().blockSize());
        yield new Batch(ids(r, s, g.config().vocabSize()), ids(r, s, g.config().vocabSize()));
      }
      case VisionTransformer v -> {
        int size = v.config().imageSize();
        Tensor images = Tensor.empty(Shape.of(options.images(), v.config().inChannels(), size, size), model.parameters().getFirst().dtype(), backend,
            MemoryCategory.ACTIVATION);
        backend.kernels().uniform(images, 7, 0);
        yield new Batch(images, ids(r, Shape.of(options.images()), v.config().numClasses()));
      }
      default -> throw new IllegalArgumentException("bench nccl-pp runs ViT and GPT models; " + name + " is a " + model.getClass().getSimpleName());
    };
  }

  private Tensor ids(Random r, Shape s, int bound) {
    long[] v = new long[Math.toIntExact(s.numel())];
    for (int i = 0; i < v.length; i++) v[i] = r.nextInt(bound);
    return Tensor.of(v, s, DType.I64, backend);
  }

  private static LossFunction loss() {
    return (o, y) -> Loss.crossEntropy(o.rank() > 2 ? Views.reshape(o, -1, o.size(-1)) : o, y.rank() > 1 ? Views.reshape(y, -1) : y);
  }

  /**
   * The input of every part for one micro-batch: part 0 gets the micro-batch, later parts a random tensor of the
   * shape and dtype the earlier parts produce (found by running them once without gradients).
   */
  private Tensor[] partInputs(UnitModel model, Split split, Batch first) {
    int parts = split.parts();
    Shape[] shapes = new Shape[parts];
    DType[] dtypes = new DType[parts];
    try (var scope = backend.openStep()) {
      GradMode.noGrad(() -> {
        Tensor x = first.inputs();
        for (int part = 0; part < parts; part++) {
          shapes[part] = x.shape();
          dtypes[part] = x.dtype();
          for (Unit u : model.units().subList(split.start(part), split.end(part))) x = u.module().forward(x);
        }
      });
    }
    Tensor[] out = new Tensor[parts];
    out[0] = first.inputs();
    for (int part = 1; part < parts; part++) {
      out[part] = Tensor.empty(shapes[part], dtypes[part], backend, MemoryCategory.ACTIVATION);
      backend.kernels().uniform(out[part], 11, part);
    }
    return out;
  }

  /** Mean milliseconds of this stage's m forwards and backwards (every local chunk) without communication, after one warm-up pass. */
  private double alone(Stage stage, List<Batch> micro, Tensor[] partInputs) {
    int v = schedule.chunks(), parts = 2 * v, rank = group.rank();
    LossFunction loss = loss();
    long total = 0;
    for (int rep = -1; rep < options.steps(); rep++) {
      backend.synchronize();
      long t0 = System.nanoTime();
      try (var scope = backend.openStep()) {
        for (Batch mb : micro)
          for (int c = 0; c < v; c++) {
            int part = c * 2 + rank;
            Tensor in = part == 0 ? mb.inputs() : partInputs[part].detach().requiresGrad(true);
            Tensor out = stage.forward(c, in);
            if (part == parts - 1) {
              Tensor l = loss.apply(out, mb.targets());
              l.item();   // the pipeline's last stage reads each micro-batch's loss too
              Autograd.backward(Arith.mulScalar(l, 1.0 / micro.size()));
            } else {
              Autograd.backward(out, Tensor.full(out.shape(), out.dtype(), backend, 1e-3), false);
            }
          }
      }
      backend.synchronize();
      if (rep >= 0) total += System.nanoTime() - t0;
      stage.zeroGrad();
    }
    return total / 1e6 / options.steps();
  }

  /** Returns the model's memory now (device memory is not left to the garbage collector). */
  private static void release(UnitModel model, Optimizer optimizer) {
    for (Tensor t : optimizer.stateDict().values()) t.storage().release();
    for (Tensor p : model.parameters()) {
      if (p.grad() != null) p.grad().storage().release();
      p.storage().release();
    }
  }
}
