package io.colossal4j.parallel.pipeline;

import io.colossal4j.step.StepHooks;

import io.colossal4j.autograd.Autograd;
import io.colossal4j.autograd.GradMode;
import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.nn.Module;
import io.colossal4j.ops.Arith;
import io.colossal4j.parallel.pipeline.P2p.Direction;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.step.Accuracy;
import io.colossal4j.step.Batch;

import io.colossal4j.step.LossFunction;
import io.colossal4j.step.MicroBatchSchedule;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Runs one rank's {@link Stage} under a {@link Schedule}: the pipeline side of {@link MicroBatchSchedule}.
 * Every pipeline rank receives the same micro-batches (the first virtual stage reads their inputs, the last
 * their targets). The last virtual stage computes each micro-batch's loss, weighted by its share of the samples
 * (so the accumulated gradients are those of the mean loss, exactly as {@link MicroBatchSchedule#SEQUENTIAL}),
 * and the top-1 correct count; both are broadcast over the pipeline group so every rank reports the same numbers.
 *
 * <p>{@link StepHooks#beforeBackward} is called before each backward this rank runs, numbered over the
 * rank's own backwards (m·v of them), so data parallelism synchronises on the last one. Under the interleaved
 * schedule a chunk's parameters receive their last gradient contribution in that chunk's last backward, which
 * is not the rank's last for every chunk; a data-parallel hook must therefore flush what is still unsynchronised
 * in {@code beforeStep}.
 *
 * <p>Not thread-safe: one thread per rank, as the process group requires.
 */
public final class PipelineRunner implements MicroBatchSchedule {
  private final ProcessGroup group;
  private final Stage stage;
  private final Schedule schedule;
  private final int p, v;
  private Timeline timeline;
  private int peakInFlight;

  /** {@code group} is the pipeline group (stage i is group rank i); {@code stage} is this rank's. */
  public PipelineRunner(ProcessGroup group, Stage stage, Schedule schedule) {
    if (stage.rank() != group.rank())
      throw new IllegalArgumentException("stage " + stage.rank() + " given to pipeline rank " + group.rank() + " of group " + group.name());
    if (stage.chunkCount() != schedule.chunks())
      throw new IllegalArgumentException("the " + schedule + " schedule runs " + schedule.chunks() + " chunks per stage, but stage "
          + stage.rank() + " holds " + stage.chunkCount() + "; split the model into " + group.size() * schedule.chunks() + " parts");
    this.group = group;
    this.stage = stage;
    this.schedule = schedule;
    this.p = group.size();
    this.v = schedule.chunks();
  }

  /** Records each action's compute interval into {@code t} (null: stop recording). */
  public PipelineRunner record(Timeline t) {
    this.timeline = t;
    return this;
  }

  /** The most micro-batch activations held at once by this rank in the last step (the schedule's memory bound). */
  public int peakInFlight() { return peakInFlight; }

  public Stage stage() { return stage; }

  private record Key(int micro, int chunk) {}

  /** Per-step state: the inputs and outputs kept for backward, and the running loss and correct count. */
  private final class Step {
    final List<Batch> micro;
    final int totalSamples;
    final LossFunction loss;
    final P2p p2p;
    final Map<Key, Tensor> inputs = new HashMap<>(), outputs = new HashMap<>();
    double lossSum;
    long correct;

    Step(List<Batch> micro, int totalSamples, LossFunction loss, P2p p2p) {
      this.micro = micro;
      this.totalSamples = totalSamples;
      this.loss = loss;
      this.p2p = p2p;
    }
  }

  @Override public Outcome trainStep(Module model, List<Batch> micro, int totalSamples, LossFunction loss, StepHooks hooks) {
    requireStage(model);
    List<Schedule.Action> actions = schedule.actions(p, group.rank(), micro.size());
    Step step = new Step(micro, totalSamples, loss, new P2p(group, micro.getFirst().inputs().backend(), p * v));
    if (timeline != null) timeline.beginStep();
    peakInFlight = 0;
    int backwards = 0;
    for (Schedule.Action a : actions) {
      switch (a) {
        case Schedule.Forward f -> forward(step, f);
        case Schedule.Backward b -> {
          hooks.beforeBackward(backwards++, micro.size() * v);
          backward(step, b);
        }
      }
    }
    if (timeline != null) timeline.endStep();
    return share(micro.getFirst().inputs().backend(), step.lossSum, step.correct);
  }

  private void forward(Step s, Schedule.Forward f) {
    int vs = f.chunk() * p + group.rank();
    Batch mb = s.micro.get(f.micro());
    Tensor in = vs == 0 ? mb.inputs() : s.p2p.recv(prev(), f.micro(), vs - 1, Direction.FORWARD);
    if (vs > 0 && in.dtype().isFloating()) in.requiresGrad(true);
    long t0 = timeline != null ? timeline.start(f) : 0;
    Tensor out = stage.forward(f.chunk(), in);
    Key key = new Key(f.micro(), f.chunk());
    if (vs == p * v - 1) {
      Tensor l = s.loss.apply(out, mb.targets());
      double weight = mb.size() / (double) s.totalSamples;
      s.lossSum += l.item() * weight;
      s.correct += Accuracy.correctTopK(out.detach(), mb.targets(), 1);
      out = Arith.mulScalar(l, weight);
    } else {
      s.p2p.send(out, next(), f.micro(), vs, Direction.FORWARD);
    }
    s.inputs.put(key, in);
    s.outputs.put(key, out);
    peakInFlight = Math.max(peakInFlight, s.outputs.size());
    if (timeline != null) timeline.add(f, t0, System.nanoTime());
  }

  private void backward(Step s, Schedule.Backward b) {
    int vs = b.chunk() * p + group.rank();
    Key key = new Key(b.micro(), b.chunk());
    Tensor out = s.outputs.remove(key), in = s.inputs.remove(key);
    Tensor grad = vs == p * v - 1 ? null : s.p2p.recv(next(), b.micro(), vs + 1, Direction.BACKWARD);
    long t0 = timeline != null ? timeline.start(b) : 0;
    if (out.requiresGrad()) {
      if (grad == null) Autograd.backward(out);
      else Autograd.backward(out, grad, false);
    }
    if (vs > 0) {
      Tensor g = in.grad() != null ? in.grad() : Tensor.zeros(in.shape(), in.dtype(), in.backend());
      s.p2p.send(g, prev(), b.micro(), vs, Direction.BACKWARD);
    }
    if (timeline != null) timeline.add(b, t0, System.nanoTime());
  }

  @Override public Outcome evalStep(Module model, Batch batch, LossFunction loss) {
    requireStage(model);
    P2p p2p = new P2p(group, batch.inputs().backend(), p * v);
    double[] result = new double[2];
    GradMode.noGrad(() -> {
      for (int c = 0; c < v; c++) {
        int vs = c * p + group.rank();
        Tensor in = vs == 0 ? batch.inputs() : p2p.recv(prev(), 0, vs - 1, Direction.EVAL);
        Tensor out = stage.forward(c, in);
        if (vs < p * v - 1) p2p.send(out, next(), 0, vs, Direction.EVAL);
        else {
          result[0] = loss.apply(out, batch.targets()).item();
          result[1] = Accuracy.correctTopK(out, batch.targets(), 1);
        }
      }
    });
    return share(batch.inputs().backend(), result[0], (long) result[1]);
  }

  /** The last rank's loss and correct count, on every rank (a correct count is exact in f64 up to 2^53). */
  private Outcome share(io.colossal4j.backend.Backend backend, double lossSum, long correct) {
    Tensor t = Tensor.of(new double[] {lossSum, correct}, Shape.of(2), DType.F64, backend);
    group.broadcast(t, p - 1);
    double[] r = t.toDoubleArray();
    return new Outcome(r[0], (long) r[1]);
  }

  private int prev() { return (group.rank() - 1 + p) % p; }

  private int next() { return (group.rank() + 1) % p; }

  private void requireStage(Module model) {
    if (model != stage) throw new IllegalArgumentException("this pipeline schedule runs " + stage + ", but was given " + model);
  }
}
