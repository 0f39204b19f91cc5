package io.colossal4j.distributed;

import java.util.EnumMap;
import java.util.Map;

/**
 * The world's ranks arranged on named axes ({@link MeshShape}), and this rank's group along each axis.
 * Groups are created on first request and cached (the world group caches them too, so two meshes over one
 * world share groups). Thread-safe.
 */
public final class DeviceMesh {
  private final ProcessGroup world;
  private final MeshShape shape;
  private final Map<MeshAxis, ProcessGroup> groups = new EnumMap<>(MeshAxis.class);

  public DeviceMesh(ProcessGroup world, MeshShape shape) {
    if (shape.worldSize() != world.size())
      throw new IllegalArgumentException("mesh " + shape + " has " + shape.worldSize() + " ranks but the world group has " + world.size());
    this.world = world;
    this.shape = shape;
  }

  /** The standard {@code (pp, dp, tp)} mesh with dp inferred from the world size. */
  public static DeviceMesh of(ProcessGroup world, int tensor, int pipeline) {
    return new DeviceMesh(world, MeshShape.infer(world.size(), tensor, pipeline));
  }

  public MeshShape shape() { return shape; }

  public ProcessGroup world() { return world; }

  public int size(MeshAxis axis) { return shape.size(axis); }

  /** This rank's coordinate along {@code axis} (0 for an axis not in the mesh). */
  public int coordinate(MeshAxis axis) {
    int i = shape.indexOf(axis);
    return i < 0 ? 0 : shape.coordinates(world.rank())[i];
  }

  /** This rank's group along {@code axis}: the ranks that differ from it only in that coordinate. */
  public synchronized ProcessGroup group(MeshAxis axis) {
    return groups.computeIfAbsent(axis, a -> world.subgroup(a.label(), shape.groupAlong(a, world.rank())));
  }

  @Override public String toString() { return "DeviceMesh" + shape + " at rank " + world.rank(); }
}
