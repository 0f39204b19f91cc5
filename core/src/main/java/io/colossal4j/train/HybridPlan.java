package io.colossal4j.train;

import io.colossal4j.step.StepHooks;

import io.colossal4j.step.MicroBatchSchedule;

import io.colossal4j.distributed.DeviceMesh;
import io.colossal4j.distributed.MeshAxis;
import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.models.vit.VisionTransformer;
import io.colossal4j.models.vit.parallel.VitTensorPlan;
import io.colossal4j.nn.Module;
import io.colossal4j.nn.UnitModel;
import io.colossal4j.parallel.data.DataParallel;
import io.colossal4j.parallel.pipeline.PipelineRunner;
import io.colossal4j.parallel.pipeline.Schedule;
import io.colossal4j.parallel.pipeline.Split;
import io.colossal4j.parallel.pipeline.SplitPolicy;
import io.colossal4j.parallel.pipeline.Stage;
import java.util.Optional;

/**
 * Applies a dp × tp × pp layout to a plain model from outside, in a fixed order (as torchtitan does):
 * tensor parallelism (layers replaced by sharded ones), then pipeline stages (this rank keeps its units), then
 * data parallelism over what remains (gradient buckets on the stage's parameters). Model code never changes.
 *
 * @param local the module this rank trains (the model, or its pipeline stage)
 * @param hooks gradient synchronisation and the global gradient norm for the engine
 * @param schedule how micro-batches run (sequentially, or the pipeline schedule)
 */
public record HybridPlan(Module local, StepHooks hooks, MicroBatchSchedule schedule) {
  /** A layout's choices beyond the mesh: the pipeline schedule and split, and the data-parallel bucket size. */
  public record Options(Schedule pipelineSchedule, SplitPolicy split, long bucketBytes) {
    public static Options defaults(Schedule s) { return new Options(s, new SplitPolicy.Balanced(), 25L << 20); }
  }

  /** The pipeline schedule a config names. */
  public static Schedule schedule(io.colossal4j.train.config.ParallelConfig.PipelineSchedule s) {
    return switch (s) {
      case io.colossal4j.train.config.ParallelConfig.PipelineSchedule.GPipe g -> new Schedule.GPipe();
      case io.colossal4j.train.config.ParallelConfig.PipelineSchedule.OneFOneB o -> new Schedule.OneFOneB();
      case io.colossal4j.train.config.ParallelConfig.PipelineSchedule.Interleaved i -> new Schedule.Interleaved(i.chunks());
    };
  }

  public static HybridPlan apply(UnitModel m, Optional<DeviceMesh> mesh, Options o) {
    Optional<ProcessGroup> tp = group(mesh, MeshAxis.TP), pp = group(mesh, MeshAxis.PP), dp = group(mesh, MeshAxis.DP);
    tp.ifPresent(g -> {
      if (!(m instanceof VisionTransformer vit))
        throw new IllegalArgumentException("tensor parallelism has plans for the vit_* models in the trainer; "
            + m.getClass().getSimpleName() + " has none here (GPT's plan is models.gpt.parallel.GptTensorPlan)");
      VitTensorPlan.parallelize(vit, g);
    });
    Module local = m;
    MicroBatchSchedule schedule = MicroBatchSchedule.SEQUENTIAL;
    if (pp.isPresent()) {
      Split split = SplitPolicy.split(o.split(), m.units(), pp.get().size() * o.pipelineSchedule().chunks());
      Stage stage = Stage.of(m, split, pp.get().size(), pp.get().rank());
      local = stage;
      schedule = new PipelineRunner(pp.get(), stage, o.pipelineSchedule());
    }
    Module trained = local;
    StepHooks data = dp.<StepHooks>map(g -> new DataParallel(trained, g, o.bucketBytes())).orElseGet(() -> new StepHooks() {});
    StepHooks hooks = tp.isEmpty() && pp.isEmpty() ? data : new HybridHooks(data, local, tp, pp);
    return new HybridPlan(local, hooks, schedule);
  }

  private static Optional<ProcessGroup> group(Optional<DeviceMesh> mesh, MeshAxis axis) {
    return mesh.filter(m -> m.size(axis) > 1).map(m -> m.group(axis));
  }
}
