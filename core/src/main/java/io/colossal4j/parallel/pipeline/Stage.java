package io.colossal4j.parallel.pipeline;

import io.colossal4j.nn.Module;
import io.colossal4j.nn.Unit;
import io.colossal4j.nn.UnitModel;
import io.colossal4j.tensor.Tensor;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * What one pipeline rank holds: one or more chunks (contiguous runs of the model's units; more than one under
 * the interleaved schedule), composed from the model's own unit modules (shared, not copied). Parameters and
 * buffers keep the model's dotted names ({@code blocks.3.attn.qkv.weight}), so a stage's state dict is a slice
 * of the single-device state dict and checkpoints and comparisons need no renaming. The stage owns exactly its
 * units' parameters.
 *
 * <p>Naming: a unit whose parameters live under prefix {@code a.b.} is registered under a container path
 * {@code a → b}; a unit whose prefix is also a container of other units (GPT's {@code transformer.embed} with
 * prefix {@code transformer.}) or is empty (ViT's {@code pos_embed}) is registered inline in that container.
 */
public final class Stage extends Module {
  private final int rank;
  private final List<List<Unit>> chunks;

  /** Children named by the path segments of the units' prefixes. */
  private static final class Container extends Module {
    @Override public Tensor forward(Tensor x) { throw new UnsupportedOperationException("a stage container is not run directly"); }

    <M extends Module> M add(String name, M m, boolean inline) { return inline ? inlineChild(name, m) : child(name, m); }
  }

  private Stage(int rank, List<List<Unit>> chunks) {
    this.rank = rank;
    this.chunks = chunks.stream().map(List::copyOf).toList();
    register(this.chunks.stream().flatMap(List::stream).toList());
  }

  /**
   * The stage of pipeline rank {@code rank} of {@code p}: parts {@code rank, rank + p, rank + 2p, ...} of
   * {@code split} as its chunks (one chunk when the split has exactly {@code p} parts).
   */
  public static Stage of(UnitModel model, Split split, int p, int rank) {
    if (p < 1 || split.parts() % p != 0)
      throw new IllegalArgumentException("a split of " + split.parts() + " parts does not divide over " + p + " pipeline ranks");
    if (rank < 0 || rank >= p) throw new IllegalArgumentException("pipeline rank " + rank + " is not in 0.." + (p - 1));
    List<Unit> units = model.units();
    if (!units.stream().map(Unit::name).toList().equals(split.units()))
      throw new IllegalArgumentException("the split was made for units " + UnitNames.summary(split.units()) + ", not this model's");
    List<List<Unit>> chunks = new ArrayList<>();
    for (int part = rank; part < split.parts(); part += p) chunks.add(units.subList(split.start(part), split.end(part)));
    return new Stage(rank, chunks);
  }

  private void register(List<Unit> units) {
    Set<String> containerPaths = new HashSet<>();
    for (Unit u : units) {
      String path = path(u);
      for (int i = path.indexOf('.'); i >= 0; i = path.indexOf('.', i + 1)) containerPaths.add(path.substring(0, i));
    }
    Map<String, Container> containers = new LinkedHashMap<>();
    for (Unit u : units) {
      String path = path(u);
      boolean inline = path.isEmpty() || containerPaths.contains(path);
      String parentPath = inline ? path : path.contains(".") ? path.substring(0, path.lastIndexOf('.')) : "";
      String name = inline ? freeName(u) : path.substring(path.lastIndexOf('.') + 1);
      Module parent = container(parentPath, containers);
      if (parent == this) addHere(name, u.module(), inline);
      else ((Container) parent).add(name, u.module(), inline);
    }
  }

  /** The unit's prefix without its trailing dot: the path its parameters live under. */
  private static String path(Unit u) {
    String p = u.prefix();
    if (!p.isEmpty() && !p.endsWith(".")) throw new IllegalArgumentException("unit " + u.name() + " has prefix '" + p + "', which does not end with '.'");
    return p.isEmpty() ? "" : p.substring(0, p.length() - 1);
  }

  private static String freeName(Unit u) { return "<" + u.name().replace('.', '/') + ">"; }

  private Module container(String path, Map<String, Container> containers) {
    if (path.isEmpty()) return this;
    Container c = containers.get(path);
    if (c != null) return c;
    int dot = path.lastIndexOf('.');
    Module parent = container(dot < 0 ? "" : path.substring(0, dot), containers);
    Container made = new Container();
    String name = path.substring(dot + 1);
    if (parent == this) addHere(name, made, false);
    else ((Container) parent).add(name, made, false);
    containers.put(path, made);
    return made;
  }

  private void addHere(String name, Module m, boolean inline) {
    if (inline) inlineChild(name, m);
    else child(name, m);
  }

  /** This stage's pipeline rank. */
  public int rank() { return rank; }

  public int chunkCount() { return chunks.size(); }

  /** The units of local chunk {@code c}. */
  public List<Unit> units(int chunk) { return chunks.get(chunk); }

  /** Runs local chunk {@code chunk}'s units in order. */
  public Tensor forward(int chunk, Tensor x) {
    Tensor h = x;
    for (Unit u : chunks.get(chunk)) h = u.module().forward(h);
    return h;
  }

  /** The single chunk's forward; a stage of several chunks is run chunk by chunk through {@link #forward(int, Tensor)}. */
  @Override public Tensor forward(Tensor x) {
    if (chunks.size() != 1)
      throw new IllegalStateException("stage " + rank + " holds " + chunks.size() + " chunks; run them through forward(chunk, x)");
    return forward(0, x);
  }

  @Override public String toString() {
    List<String> parts = chunks.stream().map(c -> c.getFirst().name() + (c.size() > 1 ? " .. " + c.getLast().name() : "")).toList();
    return "Stage " + rank + " [" + String.join(" | ", parts) + "] (" + parameterCount() + " parameters)";
  }
}
