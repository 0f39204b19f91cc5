package io.colossal4j.parallel.pipeline;

import io.colossal4j.backend.MemoryStats;
import io.colossal4j.nn.Unit;
import io.colossal4j.nn.UnitModel;
import java.util.ArrayList;
import java.util.List;

/**
 * What each pipeline rank will hold: its parts' units, parameters and estimated memory (parameters +
 * gradients + optimizer state, plus the activations of one micro-batch, and of as many micro-batches as the
 * schedule keeps alive at its peak). Printed by {@code colossal split} and before pipeline training.
 */
public record PipelinePlan(String policy, Split split, int p, Schedule schedule, int microBatches, int microBatchSize,
                           List<StagePlan> stages) {
  /** One rank's share; {@code activationBytes} is for one micro-batch, -1 when not measured. */
  public record StagePlan(int rank, List<List<String>> chunks, long parameters, long modelStateBytes, long activationBytes, int peakMicroBatches) {
    public long estimatedBytes() { return modelStateBytes + Math.max(0, activationBytes); }

    public long peakBytes() { return modelStateBytes + Math.max(0, activationBytes) * peakMicroBatches; }
  }

  public PipelinePlan {
    stages = List.copyOf(stages);
  }

  /**
   * The plan of {@code split} over {@code p} ranks. {@code activationsPerSample} (one entry per unit, bytes for
   * one sample, or null) is scaled by the micro-batch size; {@code optimizerStates} is per parameter.
   */
  public static PipelinePlan of(String policy, UnitModel model, Split split, int p, Schedule schedule, int microBatches, int microBatchSize,
                                int optimizerStates, long[] activationsPerSample) {
    List<Unit> units = model.units();
    ScheduleSimulation.Result sim = ScheduleSimulation.run(schedule, p, microBatches, 1, 2);
    List<StagePlan> stages = new ArrayList<>();
    for (int r = 0; r < p; r++) {
      List<List<String>> chunks = new ArrayList<>();
      long params = 0, state = 0, act = 0;
      for (int part = r; part < split.parts(); part += p) {
        chunks.add(split.unitsOf(part));
        for (int i = split.start(part); i < split.end(part); i++) {
          for (var t : units.get(i).module().parameters()) {
            params += t.numel();
            state += t.numel() * t.dtype().byteSize() * (2L + optimizerStates);
          }
          if (activationsPerSample != null) act += activationsPerSample[i] * microBatchSize;
        }
      }
      // the simulator counts chunk passes in flight; a micro-batch's activations are spread over the v chunks
      int peak = (int) Math.ceil(sim.peakInFlight()[r] / (double) schedule.chunks());
      stages.add(new StagePlan(r, chunks, params, state, activationsPerSample == null ? -1 : act, peak));
    }
    return new PipelinePlan(policy, split, p, schedule, microBatches, microBatchSize, stages);
  }

  /** A table, one row per rank, and the spread between the heaviest and lightest rank. */
  public String render() {
    StringBuilder sb = new StringBuilder();
    sb.append("pipeline: %d stages, %s, %d parts (%d per stage), %d micro-batches of %d samples; split policy: %s%n".formatted(
        p, name(schedule), split.parts(), schedule.chunks(), microBatches, microBatchSize, policy));
    sb.append("%-5s %-12s %-18s %-18s %-18s  %s%n".formatted("stage", "parameters", "params+grads+opt", "activations/micro",
        "estimate (1 micro)", "peak (" + name(schedule) + ")"));
    for (StagePlan s : stages) {
      String act = s.activationBytes() < 0 ? "not measured" : MemoryStats.human(s.activationBytes());
      sb.append("%-5d %-12s %-18s %-18s %-18s  %s (%d alive)%n".formatted(s.rank(), "%,d".formatted(s.parameters()),
          MemoryStats.human(s.modelStateBytes()), act, MemoryStats.human(s.estimatedBytes()), MemoryStats.human(s.peakBytes()), s.peakMicroBatches()));
      for (int c = 0; c < s.chunks().size(); c++)
        sb.append("      %s%s%n".formatted(s.chunks().size() > 1 ? "chunk " + c + ": " : "units: ", UnitNames.summary(s.chunks().get(c))));
    }
    long max = stages.stream().mapToLong(StagePlan::peakBytes).max().orElse(0), min = stages.stream().mapToLong(StagePlan::peakBytes).min().orElse(0);
    sb.append("heaviest stage %s, lightest %s (%.2f×)%n".formatted(MemoryStats.human(max), MemoryStats.human(min), min == 0 ? Double.NaN : max / (double) min));
    return sb.toString();
  }

  static String name(Schedule s) {
    return switch (s) {
      case Schedule.GPipe g -> "gpipe";
      case Schedule.OneFOneB o -> "1f1b";
      case Schedule.Interleaved i -> "interleaved(" + i.chunks() + ")";
    };
  }
}
