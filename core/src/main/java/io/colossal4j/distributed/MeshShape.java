package io.colossal4j.distributed;

import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;

/**
 * The axes of a mesh and their sizes, outermost (slowest-varying rank coordinate) first. The standard
 * layout is {@code (pp, dp, tp)}: tp varies fastest, so a tensor-parallel group is consecutive ranks on one
 * host (the bandwidth-hungry axis stays on the fast links), and pp slowest, so stages may span hosts
 * (pipelines exchange only activations), as in Megatron-LM and ColossalAI's hybrid plugin.
 */
public record MeshShape(List<Dim> dims) {
  /** One axis and its size. */
  public record Dim(MeshAxis axis, int size) {
    public Dim {
      if (size < 1) throw new IllegalArgumentException(axis.label() + " size must be >= 1, got " + size);
    }
  }

  public MeshShape {
    dims = List.copyOf(dims);
    var seen = EnumSet.noneOf(MeshAxis.class);
    for (Dim d : dims) if (!seen.add(d.axis())) throw new IllegalArgumentException("mesh axis " + d.axis().label() + " appears twice in " + dims);
  }

  /** {@code (pp, dp, tp)} with dp = worldSize / (tp * pp), or an error naming the numbers. */
  public static MeshShape infer(int worldSize, int tensor, int pipeline) {
    if (tensor < 1 || pipeline < 1) throw new IllegalArgumentException("parallel sizes must be >= 1, got tp=%d pp=%d".formatted(tensor, pipeline));
    if (worldSize < 1) throw new IllegalArgumentException("world size must be >= 1, got " + worldSize);
    if (worldSize % (tensor * pipeline) != 0)
      throw new IllegalArgumentException("world size %d is not divisible by tp*pp = %d*%d = %d".formatted(worldSize, tensor, pipeline, tensor * pipeline));
    return new MeshShape(List.of(new Dim(MeshAxis.PP, pipeline), new Dim(MeshAxis.DP, worldSize / (tensor * pipeline)), new Dim(MeshAxis.TP, tensor)));
  }

  public int worldSize() {
    int n = 1;
    for (Dim d : dims) n *= d.size();
    return n;
  }

  /** The size of {@code axis}; an axis not in the mesh has size 1. */
  public int size(MeshAxis axis) {
    for (Dim d : dims) if (d.axis() == axis) return d.size();
    return 1;
  }

  /** The coordinates of {@code rank}, one per dim in order (the last dim varies fastest). */
  public int[] coordinates(int rank) {
    if (rank < 0 || rank >= worldSize()) throw new IllegalArgumentException("rank " + rank + " is out of range for mesh " + this + " (valid: 0.." + (worldSize() - 1) + ")");
    int[] c = new int[dims.size()];
    for (int i = dims.size() - 1; i >= 0; i--) {
      c[i] = rank % dims.get(i).size();
      rank /= dims.get(i).size();
    }
    return c;
  }

  public int rank(int[] coordinates) {
    int r = 0;
    for (int i = 0; i < dims.size(); i++) r = r * dims.get(i).size() + coordinates[i];
    return r;
  }

  /** The ranks that share every coordinate of {@code rank} except along {@code axis}, in axis order. */
  public List<Integer> groupAlong(MeshAxis axis, int rank) {
    int[] c = coordinates(rank);
    int i = indexOf(axis);
    List<Integer> out = new ArrayList<>();
    if (i < 0) return List.of(rank);
    for (int k = 0; k < dims.get(i).size(); k++) {
      c[i] = k;
      out.add(rank(c));
    }
    return out;
  }

  int indexOf(MeshAxis axis) {
    for (int i = 0; i < dims.size(); i++) if (dims.get(i).axis() == axis) return i;
    return -1;
  }

  @Override public String toString() {
    StringBuilder sb = new StringBuilder("(");
    for (Dim d : dims) sb.append(sb.length() > 1 ? ", " : "").append(d.axis().label()).append('=').append(d.size());
    return sb.append(')').toString();
  }
}
