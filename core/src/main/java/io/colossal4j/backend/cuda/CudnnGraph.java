package io.colossal4j.backend.cuda;

import io.colossal4j.backend.cuda.ffi.CudaException;
import io.colossal4j.backend.cuda.ffi.Cudnn;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

/**
 * One cuDNN operation graph, built node by node through the backend API, then turned into an execution plan
 * by the library's heuristics. Tensors are 4-d (cuDNN's graphs want equal ranks); each has a unique id, and the
 * non-virtual ones are bound to device addresses at {@link Plan#run}. Scalars passed by value (scales, −∞) are
 * kept by the plan and bound automatically. {@link CudnnCandidates} builds the plans of several engine
 * configurations from it (for autotuning); {@link #discard} destroys the ones that lost. The graph owns every descriptor it created; a plan keeps its graph
 * alive (cuDNN's plans refer to their operation graph), and {@link #close} destroys them all.
 * Not thread-safe: build and run on the backend's thread.
 */
final class CudnnGraph implements AutoCloseable {
  // cudnnBackendDescriptorType_t
  private static final int D_POINTWISE = 0, D_ENGINECFG = 3, D_ENGINEHEUR = 4, D_PLAN = 5, D_OP_POINTWISE = 13, D_OPGRAPH = 15,
      D_VARIANT_PACK = 16, D_TENSOR = 17, D_MATMUL = 18, D_OP_MATMUL = 19, D_REDUCTION = 21, D_OP_REDUCTION = 22, D_OP_RESHAPE = 31;
  // cudnnBackendAttributeType_t
  private static final int T_HANDLE = 0, T_DATA_TYPE = 1, T_BOOLEAN = 2, T_INT64 = 3, T_FLOAT = 4, T_VOID_PTR = 6, T_HEUR_MODE = 8,
      T_POINTWISE_MODE = 14, T_DESCRIPTOR = 15, T_REDUCTION_OP = 18;
  // cudnnBackendAttributeName_t
  private static final int A_PW_MODE = 0, A_PW_MATH_PREC = 1, A_PW_AXIS = 9, A_HEUR_MODE = 200, A_HEUR_GRAPH = 201, A_HEUR_RESULTS = 202,
      A_PLAN_HANDLE = 400, A_PLAN_CONFIG = 401, A_PLAN_WORKSPACE = 402, A_OPPW_DESC = 750, A_OPPW_X = 751, A_OPPW_B = 752, A_OPPW_Y = 753,
      A_OPPW_ALPHA1 = 754, A_OPPW_ALPHA2 = 755, A_OPPW_T = 758, A_GRAPH_HANDLE = 800, A_GRAPH_OPS = 801, A_T_ALIGN = 900,
      A_T_DTYPE = 901, A_T_DIMS = 902, A_T_STRIDES = 903, A_T_UID = 906, A_T_VIRTUAL = 907, A_T_BY_VALUE = 908, A_VP_UIDS = 1000,
      A_VP_PTRS = 1001, A_VP_WORKSPACE = 1003, A_MM_COMP = 1500, A_OPMM_A = 1520, A_OPMM_B = 1521, A_OPMM_C = 1522, A_OPMM_DESC = 1523,
      A_RED_OP = 1600, A_RED_COMP = 1601, A_OPRED_X = 1610, A_OPRED_Y = 1611, A_OPRED_DESC = 1612, A_RESHAPE_X = 2200, A_RESHAPE_Y = 2201;
  static final int HEUR_MODE_A = 3, HEUR_MODE_B = 1;

  /** cudnnDataType_t values of the types these graphs use. */
  enum DataType {
    FLOAT(0), HALF(2), INT32(4), BFLOAT16(9), BOOLEAN(11);
    final int code;
    DataType(int code) { this.code = code; }
  }

  /** cudnnPointwiseMode_t values used here. */
  enum Pointwise {
    ADD(0), MUL(1), DIV(6), SUB(9), EXP(13), LOG(15), IDENTITY(21), CMP_GE(303), GEN_INDEX(501), BINARY_SELECT(601);
    final int code;
    Pointwise(int code) { this.code = code; }
  }

  /** cudnnReduceTensorOp_t values used here. */
  enum Reduction {
    ADD(0), MAX(3);
    final int code;
    Reduction(int code) { this.code = code; }
  }

  /** A tensor of the graph: its descriptor and unique id. */
  record Node(long desc, long uid) {}

  private final Cudnn cudnn;
  private final Arena arena = Arena.ofShared();
  private final List<Long> descriptors = new ArrayList<>();
  private final List<Long> ops = new ArrayList<>();
  private final List<Long> scalarUids = new ArrayList<>();
  private final List<MemorySegment> scalarValues = new ArrayList<>();
  private long nextVirtualUid = 1000;
  private long opGraph;
  private boolean closed;

  CudnnGraph(Cudnn cudnn) { this.cudnn = cudnn; }

  // ------------------------------------------------------------- attributes

  /** A new descriptor of that cudnnBackendDescriptorType_t, owned (and destroyed at {@link #close}) by this graph. */
  long create(int type) {
    long d = cudnn.createDescriptor(type);
    descriptors.add(d);
    return d;
  }

  private void set(long desc, int name, int type, MemorySegment values, long count) { cudnn.setAttribute(desc, name, type, count, values); }

  private void setInt(long desc, int name, int type, int value) {
    set(desc, name, type, arena.allocateFrom(ValueLayout.JAVA_INT, value), 1);
  }

  private void setLongs(long desc, int name, int type, long... values) {
    set(desc, name, type, arena.allocateFrom(ValueLayout.JAVA_LONG, values), values.length);
  }

  private void setFloat(long desc, int name, float value) { set(desc, name, T_FLOAT, arena.allocateFrom(ValueLayout.JAVA_FLOAT, value), 1); }

  private void setBool(long desc, int name, boolean value) {
    set(desc, name, T_BOOLEAN, arena.allocateFrom(ValueLayout.JAVA_BYTE, (byte) (value ? 1 : 0)), 1);
  }

  private void finish(long desc, String what) {
    int status = cudnn.finalizeDescriptor(desc, what);
    if (status != 0) throw new Unsupported(what + " is not supported by cuDNN (status " + status + "): " + cudnn.lastErrorMessage());
  }

  /** cuDNN found no engine for a node or for the whole graph; callers fall back to another kernel. */
  static final class Unsupported extends RuntimeException {
    Unsupported(String message) { super(message); }
  }

  // ------------------------------------------------------------- tensors

  /** A tensor bound to device memory at run time (uid chosen by the caller, below 1000). */
  Node tensor(long uid, DataType type, long[] dims, long[] strides) {
    if (uid <= 0 || uid >= 1000) throw new IllegalArgumentException("bound tensor uids are 1..999, got " + uid);
    return tensor(uid, type, dims, strides, false, false);
  }

  /** An intermediate that lives only inside the fused kernel. */
  Node virtual(DataType type, long[] dims, long[] strides) { return tensor(nextVirtualUid++, type, dims, strides, true, false); }

  /** A scalar passed by value (f32 or i32 bits), broadcast against any tensor. */
  Node scalar(float value) {
    Node n = tensor(nextVirtualUid++, DataType.FLOAT, new long[] {1, 1, 1, 1}, new long[] {1, 1, 1, 1}, false, true);
    scalarUids.add(n.uid());
    scalarValues.add(arena.allocateFrom(ValueLayout.JAVA_FLOAT, value));
    return n;
  }

  private Node tensor(long uid, DataType type, long[] dims, long[] strides, boolean virtual, boolean byValue) {
    long d = create(D_TENSOR);
    setInt(d, A_T_DTYPE, T_DATA_TYPE, type.code);
    setLongs(d, A_T_DIMS, T_INT64, dims);
    setLongs(d, A_T_STRIDES, T_INT64, strides);
    setLongs(d, A_T_UID, T_INT64, uid);
    setLongs(d, A_T_ALIGN, T_INT64, 16);
    if (virtual) setBool(d, A_T_VIRTUAL, true);
    if (byValue) setBool(d, A_T_BY_VALUE, true);
    finish(d, "tensor " + uid);
    return new Node(d, uid);
  }

  // ------------------------------------------------------------- operations

  /** y = op(x [, b] [, t]) elementwise with broadcasting; compute in {@code math}. */
  Node pointwise(Pointwise mode, DataType math, Node x, Node b, Node t, Node y) { return pointwise(mode, math, -1, x, b, t, y); }

  Node pointwise(Pointwise mode, DataType math, int axis, Node x, Node b, Node t, Node y) {
    long pw = create(D_POINTWISE);
    setInt(pw, A_PW_MODE, T_POINTWISE_MODE, mode.code);
    setInt(pw, A_PW_MATH_PREC, T_DATA_TYPE, math.code);
    if (axis >= 0) setLongs(pw, A_PW_AXIS, T_INT64, axis);
    finish(pw, "pointwise " + mode);
    long op = create(D_OP_POINTWISE);
    setLongs(op, A_OPPW_DESC, T_DESCRIPTOR, pw);
    setLongs(op, A_OPPW_X, T_DESCRIPTOR, x.desc());
    setFloat(op, A_OPPW_ALPHA1, 1f);
    setFloat(op, A_OPPW_ALPHA2, 1f);
    if (b != null) setLongs(op, A_OPPW_B, T_DESCRIPTOR, b.desc());
    if (t != null) setLongs(op, A_OPPW_T, T_DESCRIPTOR, t.desc());
    setLongs(op, A_OPPW_Y, T_DESCRIPTOR, y.desc());
    finish(op, "pointwise operation " + mode);
    ops.add(op);
    return y;
  }

  /** y = reduce(x) over the dims where y has extent 1. */
  Node reduction(Reduction mode, Node x, Node y) {
    long r = create(D_REDUCTION);
    setInt(r, A_RED_OP, T_REDUCTION_OP, mode.code);
    setInt(r, A_RED_COMP, T_DATA_TYPE, DataType.FLOAT.code);
    finish(r, "reduction " + mode);
    long op = create(D_OP_REDUCTION);
    setLongs(op, A_OPRED_X, T_DESCRIPTOR, x.desc());
    setLongs(op, A_OPRED_Y, T_DESCRIPTOR, y.desc());
    setLongs(op, A_OPRED_DESC, T_DESCRIPTOR, r);
    finish(op, "reduction operation " + mode);
    ops.add(op);
    return y;
  }

  /** c = a · b over the last two dims, batched over the first two; accumulates in f32. */
  Node matmul(Node a, Node b, Node c) {
    long mm = create(D_MATMUL);
    setInt(mm, A_MM_COMP, T_DATA_TYPE, DataType.FLOAT.code);
    finish(mm, "matmul");
    long op = create(D_OP_MATMUL);
    setLongs(op, A_OPMM_A, T_DESCRIPTOR, a.desc());
    setLongs(op, A_OPMM_B, T_DESCRIPTOR, b.desc());
    setLongs(op, A_OPMM_C, T_DESCRIPTOR, c.desc());
    setLongs(op, A_OPMM_DESC, T_DESCRIPTOR, mm);
    finish(op, "matmul operation");
    ops.add(op);
    return c;
  }

  /** y is x seen with other dims and strides (a transpose of the last two dims, here). */
  Node reshape(Node x, Node y) {
    long op = create(D_OP_RESHAPE);
    setLongs(op, A_RESHAPE_X, T_DESCRIPTOR, x.desc());
    setLongs(op, A_RESHAPE_Y, T_DESCRIPTOR, y.desc());
    finish(op, "reshape operation");
    ops.add(op);
    return y;
  }

  // ------------------------------------------------------------- plan

  /** An execution plan of this graph: its engine configuration's tag ({@link CudnnEngines#tag}), workspace need, how to run it. */
  final class Plan {
    private final long plan;
    final long workspaceBytes;
    final String engine;
    private boolean discarded;

    private Plan(long plan, long workspaceBytes, String engine) {
      this.plan = plan;
      this.workspaceBytes = workspaceBytes;
      this.engine = engine;
    }

    /** Queues the plan on the handle's stream with the bound tensors' addresses (uids[i] at ptrs[i]). */
    void run(long handle, long[] uids, long[] ptrs, long workspace) {
      if (uids.length != ptrs.length) throw new IllegalArgumentException(uids.length + " uids for " + ptrs.length + " pointers");
      if (closed || discarded) throw new IllegalStateException("cuDNN plan " + engine + " already destroyed");
      int n = uids.length + scalarUids.size();
      try (Arena a = Arena.ofConfined()) {
        MemorySegment ids = a.allocate(ValueLayout.JAVA_LONG, n), addrs = a.allocate(ValueLayout.JAVA_LONG, n);
        for (int i = 0; i < uids.length; i++) {
          if (ptrs[i] == 0) throw new CudaException("cuDNN plan: null device address for tensor " + uids[i]);
          ids.setAtIndex(ValueLayout.JAVA_LONG, i, uids[i]);
          addrs.setAtIndex(ValueLayout.JAVA_LONG, i, ptrs[i]);
        }
        for (int i = 0; i < scalarUids.size(); i++) {
          ids.setAtIndex(ValueLayout.JAVA_LONG, uids.length + i, scalarUids.get(i));
          addrs.setAtIndex(ValueLayout.JAVA_LONG, uids.length + i, scalarValues.get(i).address());
        }
        long vp = cudnn.createDescriptor(D_VARIANT_PACK);
        try {
          cudnn.setAttribute(vp, A_VP_UIDS, T_INT64, n, ids);
          cudnn.setAttribute(vp, A_VP_PTRS, T_VOID_PTR, n, addrs);
          cudnn.setAttribute(vp, A_VP_WORKSPACE, T_VOID_PTR, 1, a.allocateFrom(ValueLayout.JAVA_LONG, workspace));
          if (cudnn.finalizeDescriptor(vp, "variant pack") != 0) throw new CudaException("cuDNN variant pack rejected: " + cudnn.lastErrorMessage());
          cudnn.execute(handle, plan, vp);
        } finally {
          cudnn.destroyDescriptor(vp);
        }
      }
    }
  }

  /** The operation graph, finalized on first use; the graph's engines and heuristics refer to it. */
  long operationGraph(long handle) {
    if (opGraph != 0) return opGraph;
    long graph = create(D_OPGRAPH);
    setLongs(graph, A_GRAPH_HANDLE, T_HANDLE, handle);
    setLongs(graph, A_GRAPH_OPS, T_DESCRIPTOR, ops.stream().mapToLong(Long::longValue).toArray());
    finish(graph, "operation graph of " + ops.size() + " operations");
    opGraph = graph;
    return graph;
  }

  /** The engine configurations heuristics mode {@code mode} proposes for the graph, best first; none when it has no answer. */
  long[] heuristics(long graph, int mode, StringBuilder why) {
    long heur = create(D_ENGINEHEUR);
    setLongs(heur, A_HEUR_GRAPH, T_DESCRIPTOR, graph);
    setInt(heur, A_HEUR_MODE, T_HEUR_MODE, mode);
    if (cudnn.finalizeDescriptor(heur, "engine heuristics") != 0) {
      why.append(" heuristics mode ").append(mode).append(": ").append(cudnn.lastErrorMessage());
      return new long[0];
    }
    long count = cudnn.getAttribute(heur, A_HEUR_RESULTS, T_DESCRIPTOR, 0, MemorySegment.NULL);
    if (count <= 0) return new long[0];
    long[] cfgs = new long[Math.toIntExact(count)];
    for (int i = 0; i < cfgs.length; i++) cfgs[i] = create(D_ENGINECFG);
    MemorySegment arr = arena.allocateFrom(ValueLayout.JAVA_LONG, cfgs);
    long got = Math.min(cudnn.getAttribute(heur, A_HEUR_RESULTS, T_DESCRIPTOR, count, arr), count);
    long[] out = new long[(int) got];
    for (int i = 0; i < out.length; i++) out[i] = arr.getAtIndex(ValueLayout.JAVA_LONG, i);
    return out;
  }

  /** The plan of one engine configuration, or null (the reason appended to {@code why}) when it does not build. */
  Plan build(long handle, long cfg, String tag, StringBuilder why) {
    long plan = create(D_PLAN);
    try {
      setLongs(plan, A_PLAN_HANDLE, T_HANDLE, handle);
      setLongs(plan, A_PLAN_CONFIG, T_DESCRIPTOR, cfg);
      int status = cudnn.finalizeDescriptor(plan, "execution plan " + tag);
      if (status == 0) {
        MemorySegment ws = arena.allocate(ValueLayout.JAVA_LONG);
        cudnn.getAttribute(plan, A_PLAN_WORKSPACE, T_INT64, 1, ws);
        long bytes = ws.get(ValueLayout.JAVA_LONG, 0);
        if (bytes < 0) throw new CudaException("cuDNN plan " + tag + " reports a workspace of " + bytes + " bytes");
        return new Plan(plan, bytes, tag);
      }
      why.append(" ").append(tag).append(": status ").append(status).append(';');
    } catch (CudaException e) {   // a configuration the heuristics offered that cannot be built here
      why.append(" ").append(tag).append(": ").append(e.getMessage()).append(';');
    }
    destroy(plan);
    return null;
  }

  /** Destroys a plan that lost (its graph and the other plans stay); it must have no work in flight. */
  void discard(Plan p) {
    if (p.discarded || closed) return;
    p.discarded = true;
    destroy(p.plan);
  }

  private void destroy(long desc) {
    descriptors.remove(Long.valueOf(desc));
    CudnnEngines.destroyQuietly(cudnn, desc);
  }

  @Override public void close() {
    if (closed) return;
    closed = true;
    for (int i = descriptors.size() - 1; i >= 0; i--) {
      try {
        cudnn.destroyDescriptor(descriptors.get(i));
      } catch (RuntimeException ignored) {
        // a descriptor that fails to destroy leaks; the others still go
      }
    }
    descriptors.clear();
    arena.close();
  }
}
