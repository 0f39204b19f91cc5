package io.colossal4j.backend.cuda;

import io.colossal4j.backend.cuda.CudnnGraph.Plan;
import io.colossal4j.backend.cuda.ffi.Cudnn;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Predicate;

/**
 * The candidate execution plans of one {@link CudnnGraph}, for autotuning: the distinct engine configurations the
 * heuristics propose (mode A's, then mode B's not already seen; CUDNN_HEUR_MODE_FALLBACK is not asked, its
 * engines being the functional, unfused ones, never faster than a fused flash-attention engine), and when
 * exploring, variants of them with one knob set to another value the engine offers. Configurations are
 * deduplicated by tag ({@link CudnnEngines.Config#tag}); one whose plan does not finalize is skipped; one that
 * wants far more workspace than the first is dropped. The plans belong to the graph.
 *
 * @param plans      the plans built, best-guess first (the heuristics' order); never empty
 * @param knobRanges the knobs the graph's engines offer, as explored ("eng8: k24 0..12 k14 1..3"); "" when not
 */
record CudnnCandidates(List<Plan> plans, String knobRanges) {
  /**
   * The most workspace a candidate after the first may want beyond the first's (512 MiB): an alternative that
   * needs more is dropped, so autotuning never turns a step that fits into one that runs out of memory.
   */
  private static final long EXTRA_WORKSPACE = 512L << 20;
  /** Knob variants tried per graph at most (each may compile a kernel when it builds). */
  private static final int MAX_VARIANTS = 24;
  /** Values tried per knob at most. */
  private static final int MAX_VALUES = 16;

  /**
   * Up to {@code limit} plans of {@code g} whose tag {@code accept} takes; with {@code explore}, knob variants
   * complete them. Throws {@link CudnnGraph.Unsupported} when no plan builds.
   */
  static CudnnCandidates of(CudnnGraph g, Cudnn cudnn, long handle, int limit, Predicate<String> accept, boolean explore) {
    if (limit < 1) throw new IllegalArgumentException("plan limit must be >= 1, got " + limit);
    long graph = g.operationGraph(handle);
    Builder b = new Builder(g, handle, limit, accept);
    Map<Long, CudnnEngines.Config> firstOfEngine = new LinkedHashMap<>();
    for (int mode : new int[] {CudnnGraph.HEUR_MODE_A, CudnnGraph.HEUR_MODE_B}) {
      long[] cfgs = g.heuristics(graph, mode, b.why);
      for (int i = 0; i < cfgs.length && !b.full(); i++) {
        CudnnEngines.Config c = CudnnEngines.read(cudnn, cfgs[i]);
        if (c != null) firstOfEngine.putIfAbsent(c.engine(), c);
        b.offer(c == null ? "eng? #" + mode + "." + i : c.tag(), cfgs[i]);   // an unreadable one is never merged with another
      }
    }
    String ranges = explore ? explore(b, cudnn, graph, firstOfEngine.values()) : "";
    if (b.plans.isEmpty()) throw new CudnnGraph.Unsupported("no cuDNN engine runs this graph;" + b.why);
    return new CudnnCandidates(List.copyOf(b.plans), ranges);
  }

  /**
   * Offers variants of each engine's first configuration with one knob changed (tile-picking knobs first, up to
   * {@value #MAX_VALUES} values each) until the builder is full or {@value #MAX_VARIANTS} were built; returns
   * the knob ranges seen.
   */
  private static String explore(Builder b, Cudnn cudnn, long graph, Collection<CudnnEngines.Config> bases) {
    StringBuilder ranges = new StringBuilder();
    for (CudnnEngines.Config base : bases) {
      List<CudnnEngines.Knob> knobs = CudnnEngines.knobs(cudnn, graph, base.engine());
      ranges.append(ranges.isEmpty() ? "" : "; ").append("eng").append(base.engine()).append(':');
      for (CudnnEngines.Knob k : knobs) ranges.append(' ').append(k.describe());
      for (CudnnEngines.Knob k : knobs) {
        for (long v : k.values(MAX_VALUES)) {
          if (b.full() || b.attempts >= MAX_VARIANTS) return ranges.toString();
          CudnnEngines.Config c = base.with(k.type(), v);
          b.offerMade(c.tag(), () -> CudnnEngines.make(cudnn, b.g::create, graph, c));
        }
      }
    }
    return ranges.toString();
  }

  /** Collects plans: dedup by tag, the acceptance test, the workspace bound, the reasons for whatever was left out. */
  private static final class Builder {
    final CudnnGraph g;
    final long handle;
    final int limit;
    final Predicate<String> accept;
    final List<Plan> plans = new ArrayList<>();
    final Set<String> seen = new HashSet<>();
    final StringBuilder why = new StringBuilder();
    int attempts;

    Builder(CudnnGraph g, long handle, int limit, Predicate<String> accept) {
      this.g = g;
      this.handle = handle;
      this.limit = limit;
      this.accept = accept;
    }

    boolean full() { return plans.size() >= limit; }

    /** A configuration the heuristics made. */
    void offer(String tag, long cfg) {
      if (seen.add(tag) && accept.test(tag)) add(g.build(handle, cfg, tag, why));
    }

    /** A configuration made here only if its tag is new and accepted ({@code make} gives 0 when cuDNN rejects it). */
    void offerMade(String tag, java.util.function.LongSupplier make) {
      if (!seen.add(tag) || !accept.test(tag)) return;
      attempts++;
      long cfg = make.getAsLong();
      if (cfg == 0) why.append(' ').append(tag).append(": not supported;");
      else add(g.build(handle, cfg, tag, why));
    }

    private void add(Plan p) {
      if (p == null) return;
      if (!plans.isEmpty() && p.workspaceBytes > plans.getFirst().workspaceBytes + EXTRA_WORKSPACE) {
        why.append(' ').append(p.engine).append(": workspace ").append(p.workspaceBytes).append(" bytes;");
        g.discard(p);
        return;
      }
      plans.add(p);
    }
  }
}
