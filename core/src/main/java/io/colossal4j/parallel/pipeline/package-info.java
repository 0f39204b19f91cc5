/**
 * Pipeline parallelism: a plain {@link io.colossal4j.nn.UnitModel} cut between its named units into stages, run
 * under GPipe, 1F1B or interleaved 1F1B. Applied from outside, after any tensor-parallel plan:
 * <pre>{@code
 * Schedule schedule = HybridPlan.schedule(config.parallel().schedule())   // in train;
 * int pp = mesh.size(MeshAxis.PP);
 * Split split = SplitPolicy.split(new SplitPolicy.Balanced(), model.units(), pp * schedule.chunks());
 * Stage stage = Stage.of(model, split, pp, mesh.coordinate(MeshAxis.PP));       // this rank's units, model's names
 * var runner = new PipelineRunner(mesh.group(MeshAxis.PP), stage, schedule);    // a step.MicroBatchSchedule
 * Engine engine = new Engine(stage, optimizerOver(stage.namedParameters()), loss, lr, microBatches, clip, hooks, runner);
 * }</pre>
 * Every pipeline rank feeds the engine the same batches; the first stage reads the inputs, the last the targets.
 * {@link io.colossal4j.parallel.pipeline.PipelinePlan} describes a split for printing ({@code colossal split}).
 */
package io.colossal4j.parallel.pipeline;

import io.colossal4j.step.MicroBatchSchedule;
