package io.colossal4j.backend.cuda;

import io.colossal4j.backend.FusedAttention;
import io.colossal4j.backend.cuda.CudaAttention.Batch;
import io.colossal4j.backend.cuda.CudnnGraph.DataType;
import io.colossal4j.backend.cuda.CudnnGraph.Node;
import io.colossal4j.backend.cuda.CudnnGraph.Pointwise;
import io.colossal4j.backend.cuda.CudnnGraph.Reduction;
import io.colossal4j.backend.cuda.ffi.Cudnn;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.MemoryCategory;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;

/**
 * cuDNN's fused flash attention behind {@link FusedAttention}, with our own kernel ({@link CudaAttention}) for
 * whatever cuDNN does not run: the same operands are supported (bf16/f16, head dims 32–128, strided views with a
 * contiguous head dim, no bias, no dropout, causal top-left or none), and a shape whose graph no cuDNN engine
 * accepts, or a machine without cuDNN, runs our kernel instead. Both write the same row log-sum-exp (natural log
 * of the scaled logits), so a forward of one and a backward of the other agree.
 *
 * <p>The graphs are the ones cuDNN's flash-attention engines recognise: forward S = Q·Kᵀ, S·scale, [causal:
 * select S where row ≥ col, else −∞], M = max S, E = exp(S − M), Z = ΣE, stats = M + log Z, O = (E/Z)·V; backward
 * with softmax_sum = Σ(dO∘O), P = exp(S·scale − stats), dV = Pᵀ·dO, dS = P∘(dO·Vᵀ − softmax_sum)·scale,
 * dK = dSᵀ·Q, dQ = dS·K (accumulated in f32, then rounded). One plan per (direction, dtype, shape, strides,
 * causal, scale), built on first use and cached for the life of the backend.
 *
 * <p>Plan choice ({@link CudaOptions.CudnnPlans}): with {@code AUTOTUNE} the key's graph gets the plans of up to
 * {@value #CANDIDATES} distinct engine configurations (heuristics modes A then B; with {@code EXPLORE} also knob
 * variants of them), and its first call times each on that call's own buffers ({@link CudnnTuner}) before
 * running the fastest for real; the others are destroyed.
 * Timing is safe because every bound output is overwritten, never accumulated into: O, stats, dQ, dK, dV and
 * softmax_sum are written whole; the one accumulated tensor, dQ_accum, is our scratch, which cuDNN 9.6+ zeroes
 * itself and which we zero before every run on older versions. {@link #engines} reports each key's choice.
 */
final class CudnnAttention implements FusedAttention, AutoCloseable {
  // bound tensor uids
  private static final long Q = 1, K = 2, V = 3, O = 4, STATS = 5, DO = 6, DQ = 7, DK = 8, DV = 9, SOFTMAX_SUM = 10, DQ_ACCUM = 11;
  /** Engine configurations built and timed per plan key when autotuning (cuDNN offers a handful for these graphs). */
  static final int CANDIDATES = 8;

  private final CudaKernels k;
  private final CudaAttention fallback;
  private final CudaOptions.CudnnPlans choice;
  private final Predicate<String> accept;
  private final Map<String, Entry> plans = new LinkedHashMap<>();
  private Cudnn cudnn;
  private long handle;
  private String unavailable;
  private long cudnnCalls, fallbackCalls;
  /** What masked logits are set to: −∞, or the lowest finite float for cuDNN before 9.10 (whose softmax wants it). */
  private float maskValue = Float.NEGATIVE_INFINITY;
  /** Whether dQ_accum must be zeroed before each backward run (cuDNN before 9.6 does not zero it itself). */
  private boolean zeroAccum;

  /**
   * One plan key: its graph and candidate plans until the first call picks one, then the chosen plan and the
   * timings that chose it; or why cuDNN declined (then the fallback runs).
   */
  private static final class Entry {
    final String label;
    final CudnnGraph graph;
    final String unsupported;
    final String knobRanges;
    final double buildMs;
    List<CudnnGraph.Plan> candidates;
    CudnnGraph.Plan plan;
    List<CudnnTuner.Timing> timings = List.of();

    Entry(String label, CudnnGraph graph, CudnnCandidates c, String unsupported, double buildMs) {
      this.label = label;
      this.buildMs = buildMs;
      this.graph = graph;
      this.candidates = c == null ? List.of() : c.plans();
      this.knobRanges = c == null ? "" : c.knobRanges();
      this.unsupported = unsupported;
      if (candidates.size() == 1) plan = candidates.getFirst();
    }
  }

  /** Plans chosen as the backend's options say. */
  CudnnAttention(CudaKernels kernels, CudaAttention fallback) { this(kernels, fallback, kernels.backend().cudnnPlans(), tag -> true); }

  /**
   * Plans chosen by {@code choice}, among the engine configurations whose tag ({@link CudnnEngines.Config#tag})
   * {@code accept} takes (tests pin one engine this way; a key none is accepted for runs the fallback).
   */
  CudnnAttention(CudaKernels kernels, CudaAttention fallback, CudaOptions.CudnnPlans choice, Predicate<String> accept) {
    this.k = kernels;
    this.fallback = fallback;
    this.choice = java.util.Objects.requireNonNull(choice, "choice");
    this.accept = java.util.Objects.requireNonNull(accept, "accept");
  }

  /**
   * Each plan key's engine so far, in first-use order: the engine kept, and with autotuning every candidate's
   * median time (for benches, profiles and tests). Keys whose candidates are not yet timed are left out.
   */
  synchronized List<CudnnTuner.Choice> engines() {
    List<CudnnTuner.Choice> out = new ArrayList<>();
    for (Entry e : plans.values())
      if (e.plan != null) out.add(new CudnnTuner.Choice(e.label, e.plan.engine, e.timings, e.knobRanges, e.buildMs));
    return out;
  }

  /** How many calls cuDNN ran and how many fell back to our kernel (for benches and tests). */
  long[] calls() { return new long[] {cudnnCalls, fallbackCalls}; }

  /** The cuDNN version in use, or the reason cuDNN is not used. */
  synchronized String describe() {
    return ensureHandle() ? "cuDNN " + cudnn.version() : "cuDNN unavailable: " + unavailable;
  }

  @Override public boolean supports(Tensor q, Tensor kt, Tensor v, Tensor bias, Spec spec) { return fallback.supports(q, kt, v, bias, spec); }

  @Override public boolean writesStridedOutputs() { return true; }

  private boolean ensureHandle() {
    if (handle != 0) return true;
    if (unavailable != null) return false;
    try {
      k.backend().enter();
      cudnn = k.backend().cudnn();
      handle = cudnn.create();
      cudnn.setStream(handle, k.backend().stream());
      if (cudnn.version() < 91000) maskValue = -Float.MAX_VALUE;
      zeroAccum = cudnn.version() < 90600;
      return true;
    } catch (io.colossal4j.backend.cuda.ffi.CudaException e) { // CudaUnavailableException included: no libcudnn
      unavailable = e.getMessage();
      return false;
    }
  }

  // ------------------------------------------------------------- geometry

  /** [b1, b2, n, d] dims of an operand whose batch merged to (b1, b2) with these batch strides. */
  private static long[] dims(Batch b, int n, int d) { return new long[] {b.b1(), b.b2(), n, d}; }

  /** The 4-d strides: batch strides from the merge (placeholders for extent-1 dims), then row stride, unit. */
  private static long[] strides(Batch b, long[] batchStrides, long rowStride, int n) {
    long inner = b.b2() > 1 ? batchStrides[1] : rowStride * n;
    long outer = b.b1() > 1 ? batchStrides[0] : inner * b.b2();
    return new long[] {outer, inner, rowStride, 1};
  }

  private static long[] transposed(long[] a) { return new long[] {a[0], a[1], a[3], a[2]}; }

  private static long[] contiguous(long[] dims) {
    return new long[] {dims[1] * dims[2] * dims[3], dims[2] * dims[3], dims[3], 1};
  }

  private static DataType io(Tensor q) { return q.dtype() == DType.F16 ? DataType.HALF : DataType.BFLOAT16; }

  private static String key(String dir, Tensor q, Batch b, int nq, int nk, int d, Spec spec, long[]... strides) {
    StringBuilder s = new StringBuilder(dir).append(' ').append(q.dtype()).append(' ').append(b.b1()).append('x').append(b.b2())
        .append(' ').append(nq).append('x').append(nk).append('x').append(d).append(spec.causal() ? " causal " : " full ")
        .append(Float.floatToIntBits((float) spec.scale()));
    for (long[] st : strides) s.append(' ').append(Arrays.toString(st));
    return s.toString();
  }

  private Entry entry(String key, String label, java.util.function.Consumer<CudnnGraph> build) {
    Entry e = plans.get(key);
    if (e != null) return e;
    CudnnGraph g = new CudnnGraph(cudnn);
    long t0 = System.nanoTime();
    try {
      build.accept(g);
      int limit = choice == CudaOptions.CudnnPlans.HEURISTIC ? 1 : CANDIDATES;
      CudnnCandidates c = CudnnCandidates.of(g, cudnn, handle, limit, accept, choice == CudaOptions.CudnnPlans.EXPLORE);
      e = new Entry(label, g, c, null, (System.nanoTime() - t0) / 1e6);
    } catch (CudnnGraph.Unsupported u) {
      g.close();
      e = new Entry(label, null, null, u.getMessage(), (System.nanoTime() - t0) / 1e6);
    }
    plans.put(key, e);
    return e;
  }

  /** Why cuDNN refused a plan so far (the first such reason), or null (for benches and tests). */
  synchronized String refusal() {
    for (Entry e : plans.values()) if (e.unsupported != null) return e.unsupported;
    return null;
  }

  /** "fwd BF16 2x16 577x577x80 full": a key without its strides and scale, for reports. */
  private static String label(String dir, Tensor q, Batch b, int nq, int nk, int d, Spec spec) {
    return dir + " " + q.dtype() + " " + b.b1() + "x" + b.b2() + " " + nq + "x" + nk + "x" + d + (spec.causal() ? " causal" : " full");
  }

  /** S·scale with the causal mask applied: the logits both directions start from. */
  private Node logits(CudnnGraph g, Node q, Node kT, long[] sDims, float scale, boolean causal) {
    long[] sStr = contiguous(sDims);
    Node s = g.matmul(q, kT, g.virtual(DataType.FLOAT, sDims, sStr));
    Node scaled = g.pointwise(Pointwise.MUL, DataType.FLOAT, s, g.scalar(scale), null, g.virtual(DataType.FLOAT, sDims, sStr));
    if (!causal) return scaled;
    Node row = g.pointwise(Pointwise.GEN_INDEX, DataType.FLOAT, 2, scaled, null, null, g.virtual(DataType.INT32, sDims, sStr));
    Node col = g.pointwise(Pointwise.GEN_INDEX, DataType.FLOAT, 3, scaled, null, null, g.virtual(DataType.INT32, sDims, sStr));
    Node keep = g.pointwise(Pointwise.CMP_GE, DataType.BOOLEAN, row, col, null, g.virtual(DataType.BOOLEAN, sDims, sStr));
    return g.pointwise(Pointwise.BINARY_SELECT, DataType.FLOAT, scaled, g.scalar(maskValue), keep,
        g.virtual(DataType.FLOAT, sDims, sStr));
  }

  // ------------------------------------------------------------- forward

  @Override public synchronized void forward(Tensor q, Tensor kt, Tensor v, Tensor bias, Spec spec, Tensor out, Tensor lse) {
    fallback.require(q, kt, v, bias, spec);
    CudaAttention.requireOutput("out", out, q);
    Batch b = CudaAttention.batch(q, kt, v, out);
    int nq = q.size(-2), nk = kt.size(-2), d = q.size(-1);
    if (b == null || !ensureHandle() || lse.dtype() != DType.F32 || !lse.isContiguous() || lse.numel() != (long) b.count() * nq) {
      fallbackCalls++;
      fallback.forward(q, kt, v, bias, spec, out, lse);
      return;
    }
    long[][] st = b.strides();
    long[] qs = strides(b, st[0], q.stride(-2), nq), ks = strides(b, st[1], kt.stride(-2), nk), vs = strides(b, st[2], v.stride(-2), nk),
        os = strides(b, st[3], out.stride(-2), nq);
    Entry e = entry(key("fwd", q, b, nq, nk, d, spec, qs, ks, vs, os), label("fwd", q, b, nq, nk, d, spec), g -> {
      DataType t = io(q);
      Node nQ = g.tensor(Q, t, dims(b, nq, d), qs);
      Node nKT = g.tensor(K, t, transposed(dims(b, nk, d)), transposed(ks));
      Node nV = g.tensor(V, t, dims(b, nk, d), vs);
      long[] sDims = {b.b1(), b.b2(), nq, nk}, sStr = contiguous(sDims), rDims = {b.b1(), b.b2(), nq, 1}, rStr = contiguous(rDims);
      Node s = logits(g, nQ, nKT, sDims, (float) spec.scale(), spec.causal());
      Node m = g.reduction(Reduction.MAX, s, g.virtual(DataType.FLOAT, rDims, rStr));
      Node centred = g.pointwise(Pointwise.SUB, DataType.FLOAT, s, m, null, g.virtual(DataType.FLOAT, sDims, sStr));
      Node ex = g.pointwise(Pointwise.EXP, DataType.FLOAT, centred, null, null, g.virtual(DataType.FLOAT, sDims, sStr));
      Node z = g.reduction(Reduction.ADD, ex, g.virtual(DataType.FLOAT, rDims, rStr));
      Node logZ = g.pointwise(Pointwise.LOG, DataType.FLOAT, z, null, null, g.virtual(DataType.FLOAT, rDims, rStr));
      g.pointwise(Pointwise.ADD, DataType.FLOAT, m, logZ, null, g.tensor(STATS, DataType.FLOAT, rDims, rStr));
      Node p = g.pointwise(Pointwise.DIV, DataType.FLOAT, ex, z, null, g.virtual(t, sDims, sStr));
      g.matmul(p, nV, g.tensor(O, t, dims(b, nq, d), os));
    });
    if (e.graph == null) {
      fallbackCalls++;
      fallback.forward(q, kt, v, bias, spec, out, lse);
      return;
    }
    cudnnCalls++;
    run(e, new long[] {Q, K, V, O, STATS}, new long[] {addr(q), addr(kt), addr(v), addr(out), addr(lse)}, null);
  }

  private long addr(Tensor t) { return k.backend().address(t); }

  /**
   * Runs the key's plan on these buffers; on the key's first call with several candidates, times them all here
   * first ({@link #tune}). {@code before} (null: nothing) is queued ahead of every run of a plan.
   */
  private void run(Entry e, long[] uids, long[] ptrs, Runnable before) {
    k.backend().enter();
    if (e.plan == null) tune(e, uids, ptrs, before);
    CudnnGraph.Plan plan = e.plan;
    Tensor ws = workspace(plan.workspaceBytes);
    CudaProfiler prof = k.backend().profiler();
    try {
      if (before != null) before.run();
      if (prof != null) prof.begin("cudnn " + plan.engine);
      plan.run(handle, uids, ptrs, ws == null ? 0 : k.ptr(ws));
      if (prof != null) prof.end();
    } finally {
      if (ws != null) ws.storage().release();
    }
  }

  /**
   * Times every candidate of {@code e} on the call's own buffers with one workspace as large as the largest need,
   * keeps the fastest and destroys the others (all finished: the tuner waits for each). Every run overwrites the
   * same outputs, which the real run then writes again.
   */
  private void tune(Entry e, long[] uids, long[] ptrs, Runnable before) {
    List<CudnnGraph.Plan> c = e.candidates;
    long[] wsBytes = c.stream().mapToLong(p -> p.workspaceBytes).toArray();
    Tensor ws = workspace(Arrays.stream(wsBytes).max().orElse(0));
    try {
      long wsPtr = ws == null ? 0 : k.ptr(ws);
      List<CudnnTuner.Timing> timings = CudnnTuner.time(k.backend().driver(), k.backend().stream(), c.stream().map(p -> p.engine).toList(),
          wsBytes, i -> {
            if (before != null) before.run();
            c.get(i).run(handle, uids, ptrs, wsPtr);
          });
      int best = CudnnTuner.fastest(timings);
      if (best < 0)
        throw new io.colossal4j.backend.cuda.ffi.CudaException("cuDNN: none of the " + c.size() + " plans for " + e.label + " ran; first: "
            + timings.getFirst().describe());
      for (int i = 0; i < c.size(); i++) if (i != best) e.graph.discard(c.get(i));
      e.plan = c.get(best);
      e.candidates = List.of(e.plan);
      e.timings = timings;
    } finally {
      if (ws != null) ws.storage().release();
    }
  }

  /** A temporary workspace of {@code bytes}, or null for none. */
  private Tensor workspace(long bytes) {
    if (bytes <= 0) return null;
    if (bytes > Integer.MAX_VALUE) throw new io.colossal4j.backend.cuda.ffi.CudaException("cuDNN plan wants a workspace of " + bytes + " bytes (over 2 GiB)");
    return Tensor.empty(Shape.of((int) bytes), DType.BOOL, k.backend(), MemoryCategory.TEMPORARY);
  }

  // ------------------------------------------------------------- backward

  @Override public synchronized void backward(Tensor gOut, Tensor q, Tensor kt, Tensor v, Tensor bias, Tensor out, Tensor lse, Spec spec,
                                              Tensor gq, Tensor gk, Tensor gv, Tensor gBias) {
    fallback.require(q, kt, v, bias, spec);
    CudaAttention.requireOutput("gq", gq, q);
    CudaAttention.requireOutput("gk", gk, kt);
    CudaAttention.requireOutput("gv", gv, v);
    Tensor go = gOut;
    if (go.dtype() != q.dtype() || !go.shape().equals(out.shape()) || !CudaAttention.aligned(go) || CudaAttention.batch(q, go) == null) {
      go = Tensor.empty(out.shape(), q.dtype(), k.backend(), MemoryCategory.TEMPORARY);
      k.copy(gOut, go);
    }
    try {
      backwardOn(go, q, kt, v, bias, out, lse, spec, gq, gk, gv);
    } finally {
      if (go != gOut) go.storage().release();
    }
  }

  private void backwardOn(Tensor go, Tensor q, Tensor kt, Tensor v, Tensor bias, Tensor out, Tensor lse, Spec spec, Tensor gq, Tensor gk, Tensor gv) {
    Batch b = CudaAttention.batch(q, kt, v, go, out, gq, gk, gv);
    int nq = q.size(-2), nk = kt.size(-2), d = q.size(-1);
    if (b == null || !ensureHandle()) {
      fallbackCalls++;
      fallback.backward(go, q, kt, v, bias, out, lse, spec, gq, gk, gv, null);
      return;
    }
    long[][] st = b.strides();
    long[] qs = strides(b, st[0], q.stride(-2), nq), ks = strides(b, st[1], kt.stride(-2), nk), vs = strides(b, st[2], v.stride(-2), nk),
        dos = strides(b, st[3], go.stride(-2), nq), os = strides(b, st[4], out.stride(-2), nq), dqs = strides(b, st[5], gq.stride(-2), nq),
        dks = strides(b, st[6], gk.stride(-2), nk), dvs = strides(b, st[7], gv.stride(-2), nk);
    Entry e = entry(key("bwd", q, b, nq, nk, d, spec, qs, ks, vs, dos, os, dqs, dks, dvs), label("bwd", q, b, nq, nk, d, spec),
        g -> buildBackward(g, io(q), b, nq, nk, d, spec, qs, ks, vs, dos, os, dqs, dks, dvs));
    if (e.graph == null) {
      fallbackCalls++;
      fallback.backward(go, q, kt, v, bias, out, lse, spec, gq, gk, gv, null);
      return;
    }
    cudnnCalls++;
    long rows = (long) b.count() * nq;
    Tensor sum = Tensor.empty(Shape.of(Math.toIntExact(rows)), DType.F32, k.backend(), MemoryCategory.TEMPORARY);
    Tensor acc = Tensor.empty(Shape.of(Math.toIntExact(rows * d)), DType.F32, k.backend(), MemoryCategory.TEMPORARY);
    try {
      // dQ_accum is accumulated into (atomics over key blocks): zeroed ahead of every run where cuDNN does not do it
      run(e, new long[] {Q, K, V, O, STATS, DO, DQ, DK, DV, SOFTMAX_SUM, DQ_ACCUM},
          new long[] {addr(q), addr(kt), addr(v), addr(out), addr(lse), addr(go), addr(gq), addr(gk), addr(gv), addr(sum), addr(acc)},
          zeroAccum ? () -> k.fill(acc, 0) : null);
    } finally {
      sum.storage().release();
      acc.storage().release();
    }
  }

  private void buildBackward(CudnnGraph g, DataType t, Batch b, int nq, int nk, int d, Spec spec, long[] qs, long[] ks, long[] vs,
                                    long[] dos, long[] os, long[] dqs, long[] dks, long[] dvs) {
    long[] qDims = dims(b, nq, d), kDims = dims(b, nk, d);
    long[] sDims = {b.b1(), b.b2(), nq, nk}, sStr = contiguous(sDims), rDims = {b.b1(), b.b2(), nq, 1}, rStr = contiguous(rDims);
    long[] sTDims = {b.b1(), b.b2(), nk, nq}, sTStr = {sStr[0], sStr[1], 1, nk};
    float scale = (float) spec.scale();
    Node nQ = g.tensor(Q, t, qDims, qs);
    Node nKT = g.tensor(K, t, transposed(kDims), transposed(ks));
    Node nVT = g.tensor(V, t, transposed(kDims), transposed(vs));
    Node nO = g.tensor(O, t, qDims, os);
    Node nDO = g.tensor(DO, t, qDims, dos);
    Node stats = g.tensor(STATS, DataType.FLOAT, rDims, rStr);
    // softmax_sum = Σ dO∘O per row
    Node prod = g.pointwise(Pointwise.MUL, DataType.FLOAT, nDO, nO, null, g.virtual(DataType.FLOAT, qDims, contiguous(qDims)));
    Node rowSum = g.reduction(Reduction.ADD, prod, g.virtual(DataType.FLOAT, rDims, rStr));
    Node softmaxSum = g.pointwise(Pointwise.MUL, DataType.FLOAT, rowSum, g.scalar(1f), null, g.tensor(SOFTMAX_SUM, DataType.FLOAT, rDims, rStr));
    // P = exp(S·scale − stats)
    Node s = logits(g, nQ, nKT, sDims, scale, spec.causal());
    Node centred = g.pointwise(Pointwise.SUB, DataType.FLOAT, s, stats, null, g.virtual(DataType.FLOAT, sDims, sStr));
    Node p = g.pointwise(Pointwise.EXP, DataType.FLOAT, centred, null, null, g.virtual(DataType.FLOAT, sDims, sStr));
    Node pT = g.reshape(p, g.virtual(t, sTDims, sTStr));
    g.matmul(pT, nDO, g.tensor(DV, t, kDims, dvs));
    // dS = P∘(dO·Vᵀ − softmax_sum)·scale
    Node dP = g.matmul(nDO, nVT, g.virtual(DataType.FLOAT, sDims, sStr));
    Node diff = g.pointwise(Pointwise.SUB, DataType.FLOAT, dP, softmaxSum, null, g.virtual(DataType.FLOAT, sDims, sStr));
    Node dsRaw = g.pointwise(Pointwise.MUL, DataType.FLOAT, diff, p, null, g.virtual(DataType.FLOAT, sDims, sStr));
    Node dS = g.pointwise(Pointwise.MUL, DataType.FLOAT, dsRaw, g.scalar(scale), null, g.virtual(DataType.FLOAT, sDims, sStr));
    Node dST = g.reshape(dS, g.virtual(t, sTDims, sTStr));
    g.matmul(dST, nQ, g.tensor(DK, t, kDims, dks));
    Node kBack = g.reshape(nKT, g.virtual(t, kDims, ks));
    Node acc = g.matmul(dS, kBack, g.tensor(DQ_ACCUM, DataType.FLOAT, qDims, contiguous(qDims)));
    g.pointwise(Pointwise.IDENTITY, DataType.FLOAT, acc, null, null, g.tensor(DQ, t, qDims, dqs));
  }

  @Override public synchronized void close() {
    for (Entry e : plans.values()) if (e.graph != null) e.graph.close();
    plans.clear();
    if (handle != 0) {
      k.backend().enter();
      cudnn.destroy(handle);
      handle = 0;
    }
  }

}
