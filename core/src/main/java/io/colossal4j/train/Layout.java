package io.colossal4j.train;

import io.colossal4j.distributed.DeviceMesh;
import io.colossal4j.distributed.MeshAxis;
import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.train.config.RunConfig;
import java.util.Optional;

/**
 * This process's place in the job: the world group (absent for one process), the dp × pp × tp mesh and the
 * batch plan. Rank order is the mesh's (tp fastest, then dp, then pp), so a tensor-parallel group stays on one host.
 */
public record Layout(Optional<ProcessGroup> world, Optional<DeviceMesh> mesh, RunConfig.BatchPlan batch) {
  public static Layout of(RunConfig config, Optional<ProcessGroup> world) {
    int size = world.map(ProcessGroup::size).orElse(1);
    RunConfig.BatchPlan plan = config.plan(size);
    Optional<DeviceMesh> mesh = world.map(w -> DeviceMesh.of(w, config.parallel().tensor().size(), config.parallel().pipeline()));
    return new Layout(world, mesh, plan);
  }

  public int worldSize() { return world.map(ProcessGroup::size).orElse(1); }

  public int rank() { return world.map(ProcessGroup::rank).orElse(0); }

  public int size(MeshAxis axis) { return mesh.map(m -> m.size(axis)).orElse(1); }

  public int coordinate(MeshAxis axis) { return mesh.map(m -> m.coordinate(axis)).orElse(0); }

  public Optional<ProcessGroup> group(MeshAxis axis) { return mesh.filter(m -> m.size(axis) > 1).map(m -> m.group(axis)); }

  /** The rank that prints, writes metrics and saves checkpoints. */
  public boolean reports() { return rank() == 0; }

  /** The groups of each mesh axis of size > 1, e.g. {@code tp groups [0, 1] [2, 3]}. */
  public java.util.List<String> groups() {
    java.util.List<String> out = new java.util.ArrayList<>();
    mesh.ifPresent(m -> {
      for (MeshAxis axis : new MeshAxis[] {MeshAxis.TP, MeshAxis.PP, MeshAxis.DP}) {
        if (m.size(axis) <= 1) continue;
        java.util.Set<java.util.List<Integer>> seen = new java.util.LinkedHashSet<>();
        for (int r = 0; r < m.shape().worldSize(); r++) seen.add(m.shape().groupAlong(axis, r));
        StringBuilder sb = new StringBuilder(axis.label() + " groups:");
        seen.forEach(g -> sb.append(' ').append(g));
        out.add(sb.toString());
      }
    });
    return out;
  }

  public String describe() {
    return worldSize() == 1 ? "1 process (data 1 x tensor 1 x pipeline 1)"
        : "%d processes = data %d x tensor %d x pipeline %d".formatted(worldSize(), size(MeshAxis.DP), size(MeshAxis.TP), size(MeshAxis.PP));
  }
}
