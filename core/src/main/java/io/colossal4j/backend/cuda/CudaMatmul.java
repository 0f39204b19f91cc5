package io.colossal4j.backend.cuda;

import static io.colossal4j.backend.cuda.CudaKernels.dt;

import io.colossal4j.backend.cuda.ffi.CublasLt;
import io.colossal4j.backend.cuda.ffi.Driver.Dim3;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.MemoryCategory;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Storage;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Matmul on CUDA. f32, bf16 and f16 operands of one dtype whose matrices have a BLAS layout (one of the two
 * strides of each matrix is 1) go to cuBLASLt, which computes in f32 (exact f32 for f32 tensors, as PyTorch
 * does by default: no TF32); everything else goes to the generic tiled kernel in matmul.cu.
 *
 * <p>Row-major to column-major: out[M,N] = a[M,K] b[K,N] is computed as out^T = b^T a^T, with cuBLASLt's
 * "A" = our b and "B" = our a, so no operand is copied. Batch dims are folded into M when b is broadcast
 * over them (the linear-layer case); otherwise one strided-batched call per coalesced batch run.
 * Plans (descriptors, layouts, the chosen algorithm) are cached per problem shape.
 */
final class CudaMatmul implements AutoCloseable {
  private static final long WORKSPACE_BYTES = 32L << 20;
  private static final int MAX_PLANS = 256;
  /** Algorithms asked of the heuristic and timed once per problem shape. */
  private static final int CANDIDATES = 8;

  private final CudaKernels k;
  private final Arena plansArena = Arena.ofShared();
  private final Map<Problem, Plan> plans = new LinkedHashMap<>();
  /** alpha and beta (f32 host scalars, read by cuBLASLt during the call). */
  private final MemorySegment one = plansArena.allocateFrom(ValueLayout.JAVA_FLOAT, 1f), zero = plansArena.allocateFrom(ValueLayout.JAVA_FLOAT, 0f);
  private long handle;
  private Storage workspace;
  /** How many GEMMs took the residual (beta = 1, C = residual) path so far: tests check the fused path ran. */
  private final java.util.concurrent.atomic.AtomicLong residualGemms = new java.util.concurrent.atomic.AtomicLong();

  CudaMatmul(CudaKernels kernels) { this.k = kernels; }

  /**
   * What a GEMM adds its product to: nothing (beta = 0, D overwritten), D itself (beta = 1, in place), or a
   * separate C of D's dtype, shape and memory order (beta = 1, C != D: a residual added in the same pass).
   */
  enum Beta { NONE, INTO_D, FROM_C }

  /**
   * One cuBLASLt problem, column-major: D[m,n] = op(A)[m,k] op(B)[k,n] (+ C or D per {@code beta}), batched with
   * strides; {@code ldc} is C's leading dimension (ldd unless beta is FROM_C). The plan cache's key.
   */
  record Problem(int dataType, int opA, int opB, long m, long n, long kk, long lda, long ldb, long ldc, long ldd,
                 int batch, long strideA, long strideB, long strideD, Beta beta, int epilogue) {
    /** "gemm bf16 TN 1280x9248x1280 +res +bias" (column-major m x n x k, as cuBLASLt sees it), for profiles. */
    String describe() {
      String t = dataType == CublasLt.R_32F ? "f32" : dataType == CublasLt.R_16BF ? "bf16" : "f16";
      String add = switch (beta) {
        case NONE -> "";
        case INTO_D -> " +=";
        case FROM_C -> " +res";
      };
      String epi = switch (epilogue) {
        case CublasLt.EPILOGUE_DEFAULT -> "";
        case CublasLt.EPILOGUE_BIAS -> " +bias";
        case CublasLt.EPILOGUE_GELU_AUX_BIAS -> " +bias +gelu";
        default -> " +epi" + epilogue;
      };
      return "gemm " + t + " " + (opA == CublasLt.OP_N ? "N" : "T") + (opB == CublasLt.OP_N ? "N" : "T") + " " + m + "x" + n + "x" + kk
          + (batch > 1 ? " b" + batch : "") + add + epi;
    }
  }

  /**
   * Descriptors of one problem and its chosen algorithm; layoutC is layoutD unless the problem reads a separate C.
   * {@code choice}: the candidate the tuner kept ("heuristic#2"), shown by tests and the tuning log.
   */
  private record Plan(long desc, long layoutA, long layoutB, long layoutC, long layoutD, MemorySegment algo, String choice) {
    Plan with(Candidate c) { return new Plan(desc, layoutA, layoutB, layoutC, layoutD, c.algo(), c.name()); }
  }

  /**
   * One algorithm to time: the heuristic's i-th offer. (Split-K copies of the offers, for the weight gradients'
   * long reductions over few output tiles, were tried on an H200 and dropped: cuBLASLt accepts them only for
   * its older kernels, and none ran faster than the heuristic's own Hopper kernels.)
   */
  record Candidate(String name, MemorySegment algo) {}

  /**
   * Which candidate algorithms the tuner may time, by name ("heuristic#0" .. "heuristic#7"); all by default.
   * Tests narrow it to run one kind of candidate (then {@link #clearPlans} so the next call plans again).
   */
  private volatile java.util.function.Predicate<String> accept = name -> true;

  /** Where each tuned problem's candidates and their times are written (null: nowhere); a diagnostic of `bench gpu`. */
  private volatile java.io.PrintStream tuneLog;

  void logTuning(java.io.PrintStream to) { tuneLog = to; }

  void acceptCandidates(java.util.function.Predicate<String> which) {
    accept = which;
    synchronized (this) { clearPlans(); }
  }

  /** The cached problems, described as in profiles. */
  synchronized List<String> plannedProblems() { return plans.keySet().stream().map(Problem::describe).toList(); }

  /** The candidate kept for the problem described as {@code describe} (null: no plan), for tests. */
  synchronized String chosen(String describe) {
    for (var e : plans.entrySet()) if (e.getKey().describe().equals(describe)) return e.getValue().choice();
    return null;
  }

  /** A matrix as BLAS sees it: transposed or not, and its leading dimension; null when strides allow neither. */
  private record Mat(boolean rowMajor, long ld) {}

  /** Layout of a rows x cols matrix with strides (sr, sc): row-major needs sc == 1, column-major sr == 1. */
  static Object layoutOf(long rows, long cols, long sr, long sc) {
    if ((cols == 1 || sc == 1) && (rows == 1 || sr >= cols)) return new Mat(true, rows == 1 ? Math.max(cols, 1) : sr);
    if ((rows == 1 || sr == 1) && (cols == 1 || sc >= rows)) return new Mat(false, cols == 1 ? Math.max(rows, 1) : sc);
    return null;
  }

  void matmul(Tensor a, Tensor b, Tensor out, boolean accumulate) {
    int r = out.rank();
    if (r < 2 || a.rank() != r || b.rank() != r)
      throw new TensorException("matmul: operands must have the output's rank (>= 2), got " + a.shape() + " @ " + b.shape() + " -> " + out.shape());
    int m = out.size(-2), n = out.size(-1), kk = a.size(-1);
    if (a.size(-2) != m || b.size(-1) != n || b.size(-2) != kk)
      throw new TensorException("matmul: shapes " + a.shape() + " @ " + b.shape() + " do not give " + out.shape());
    for (int d = 0; d < r - 2; d++)
      if (a.size(d) != out.size(d) || b.size(d) != out.size(d))
        throw new TensorException("matmul: batch dims of " + a.shape() + " and " + b.shape() + " must equal those of " + out.shape());
    long pa = k.ptr(a), pb = k.ptr(b), po = k.ptr(out);
    if (out.numel() == 0) return;
    if (kk == 0) {
      if (!accumulate) k.fill(out, 0);
      return;
    }
    boolean blasType = a.dtype() == b.dtype() && a.dtype() == out.dtype()
        && (a.dtype() == DType.F32 || a.dtype() == DType.BF16 || a.dtype() == DType.F16);
    if (!blasType || !tryBlas(a, b, out, accumulate)) generic(a, b, out, accumulate, pa, pb, po);
  }

  // ------------------------------------------------------------- cuBLASLt path

  private boolean tryBlas(Tensor a, Tensor b, Tensor out, boolean accumulate) {
    int r = out.rank();
    long m = out.size(-2), n = out.size(-1), kk = a.size(-1);
    Object ao = layoutOf(m, kk, a.stride(-2), a.stride(-1)), bo = layoutOf(kk, n, b.stride(-2), b.stride(-1));
    Object oo = layoutOf(m, n, out.stride(-2), out.stride(-1));
    if (!(ao instanceof Mat am) || !(bo instanceof Mat bm) || !(oo instanceof Mat om) || !om.rowMajor()) return false;
    // batch dims, coalesced over (a, b, out)
    Shape batch = Shape.of(Arrays.copyOf(out.shape().toArray(), r - 2));
    long[][] bs = {Arrays.copyOf(a.strides(), r - 2), Arrays.copyOf(b.strides(), r - 2), Arrays.copyOf(out.strides(), r - 2)};
    CudaGeometry.Space s = CudaGeometry.coalesce(batch, bs, new long[] {0, 0, 0});
    int es = a.dtype().byteSize();
    long a0 = k.ptr(a) + a.offset() * es, b0 = k.ptr(b) + b.offset() * es, o0 = k.ptr(out) + out.offset() * es;
    // fold a broadcast b into M: a and out step by whole matrices of rows along the batch
    if (s.rank() == 1 && s.strides()[1][0] == 0 && am.rowMajor() && s.strides()[0][0] == m * am.ld() && s.strides()[2][0] == m * om.ld()) {
      long mm = m * s.sizes()[0];
      return run(a.dtype(), mm, n, kk, am, bm, om, 1, 0, 0, 0, a0, b0, o0, accumulate);
    }
    if (s.rank() > 1) {
      // several non-mergeable batch runs: one strided-batched call per outer index
      int inner = s.sizes()[s.rank() - 1];
      long outer = s.numel() / inner;
      int[] outerSizes = Arrays.copyOf(s.sizes(), s.rank() - 1);
      for (long i = 0; i < outer; i++) {
        long ia = 0, ib = 0, io = 0, rem = i;
        for (int d = outerSizes.length - 1; d >= 0; d--) {
          long idx = rem % outerSizes[d];
          rem /= outerSizes[d];
          ia += idx * s.strides()[0][d];
          ib += idx * s.strides()[1][d];
          io += idx * s.strides()[2][d];
        }
        int last = s.rank() - 1;
        if (!run(a.dtype(), m, n, kk, am, bm, om, inner, s.strides()[0][last], s.strides()[1][last], s.strides()[2][last],
            a0 + ia * es, b0 + ib * es, o0 + io * es, accumulate)) return false;
      }
      return true;
    }
    int batchCount = s.rank() == 0 ? 1 : s.sizes()[0];
    long sa = s.rank() == 0 ? 0 : s.strides()[0][0], sb = s.rank() == 0 ? 0 : s.strides()[1][0], so = s.rank() == 0 ? 0 : s.strides()[2][0];
    return run(a.dtype(), m, n, kk, am, bm, om, batchCount, sa, sb, so, a0, b0, o0, accumulate);
  }

  /** Queues out^T = b^T a^T for {@code batch} matrices; false when cuBLASLt has no algorithm (the caller falls back). */
  private boolean run(DType dtype, long m, long n, long kk, Mat am, Mat bm, Mat om, int batch, long sa, long sb, long so,
                      long pa, long pb, long po, boolean accumulate) {
    if (batch > 1 && (sa == 0 || sb == 0 || so == 0)) {
      // a broadcast operand inside a strided batch: one call per matrix keeps the layouts plain
      int es = dtype.byteSize();
      for (int i = 0; i < batch; i++)
        if (!run(dtype, m, n, kk, am, bm, om, 1, 0, 0, 0, pa + i * sa * es, pb + i * sb * es, po + i * so * es, accumulate)) return false;
      return true;
    }
    Problem p = problem(dtype, m, n, kk, am, bm, om, batch, sa, sb, so, accumulate);
    // autotune only problems that overwrite their output, on their own buffers: {a, b, c, d}
    Plan plan = plan(p, accumulate ? null : new long[] {pa, pb, po, po}, 0, 0);
    if (plan == null) return false;
    CublasLt lt = k.backend().cublasLt();
    k.backend().enter();
    CudaProfiler prof = k.backend().profiler();
    if (prof != null) prof.begin(p.describe());
    lt.matmul(handle, plan.desc, one, pb, plan.layoutA, pa, plan.layoutB, accumulate ? one : zero, po, plan.layoutC, po, plan.layoutD,
        plan.algo, k.ptr(workspaceTensor()), WORKSPACE_BYTES, k.backend().stream());
    if (prof != null) prof.end();
    return true;
  }

  /** The column-major problem of out[m, n] = a[m, k] b[k, n]: D (n x m, ld = om.ld) = opA(our b) (n x k) * opB(our a) (k x m). */
  private static Problem problem(DType dtype, long m, long n, long kk, Mat am, Mat bm, Mat om, int batch, long sa, long sb, long so, boolean accumulate) {
    return new Problem(blasType(dtype), bm.rowMajor() ? CublasLt.OP_N : CublasLt.OP_T, am.rowMajor() ? CublasLt.OP_N : CublasLt.OP_T,
        n, m, kk, bm.ld(), am.ld(), om.ld(), om.ld(), batch, sb, sa, so, accumulate ? Beta.INTO_D : Beta.NONE, CublasLt.EPILOGUE_DEFAULT);
  }

  /** cuBLASLt's data type for f32, bf16 and f16 (the dtypes the callers check for). */
  private static int blasType(DType dtype) {
    return switch (dtype) {
      case F32 -> CublasLt.R_32F;
      case BF16 -> CublasLt.R_16BF;
      case F16 -> CublasLt.R_16F;
      default -> throw new IllegalStateException("no BLAS type for " + dtype);
    };
  }

  /**
   * gw[out, in] = gᵀ·x for g [rows, out] and x [rows, in] (a linear layer's weight gradient), queued on the
   * backend's side stream with a workspace of its own, so it runs beside what the main stream queues next (the
   * input gradient's GEMM first). The plan is made (and tuned) on the main stream before. Tags g's, x's and gw's
   * blocks with the job. False, nothing queued, when cuBLASLt cannot take these operands (2-D, one BLAS dtype,
   * layouts it reads in place).
   */
  boolean weightGradOnSide(Tensor g, Tensor x, Tensor gw) {
    DType t = gw.dtype();
    if (g.rank() != 2 || x.rank() != 2 || gw.rank() != 2 || g.dtype() != t || x.dtype() != t
        || !(t == DType.F32 || t == DType.BF16 || t == DType.F16)) return false;
    long m = gw.size(0), n = gw.size(1), kk = g.size(0);
    if (m == 0 || n == 0 || kk == 0 || g.size(1) != m || x.size(0) != kk || x.size(1) != n) return false;
    // a = gᵀ [out, rows]
    Object ao = layoutOf(m, kk, g.stride(1), g.stride(0)), bo = layoutOf(kk, n, x.stride(0), x.stride(1)), oo = layoutOf(m, n, gw.stride(0), gw.stride(1));
    if (!(ao instanceof Mat am) || !(bo instanceof Mat bm) || !(oo instanceof Mat om) || !om.rowMajor()) return false;
    int es = t.byteSize();
    long pa = k.ptr(g) + g.offset() * es, pb = k.ptr(x) + x.offset() * es, po = k.ptr(gw) + gw.offset() * es;
    Problem p = problem(t, m, n, kk, am, bm, om, 1, 0, 0, 0, false);
    Plan plan = plan(p, new long[] {pa, pb, po, po}, 0, 0);
    if (plan == null) return false;
    CudaBackend backend = k.backend();
    long side = backend.sideBegin();
    backend.cublasLt().matmul(handle, plan.desc, one, pb, plan.layoutA, pa, plan.layoutB, zero, po, plan.layoutC, po, plan.layoutD,
        plan.algo, k.ptr(sideWorkspace()), WORKSPACE_BYTES, side);
    long job = backend.sideEnd();
    for (Tensor used : new Tensor[] {g, x, gw}) ((CudaStorage) used.storage()).markSideUse(job);
    return true;
  }

  /**
   * out[M, N] = a[M, K] b[K, N] + bias[N] in one cuBLASLt call with the bias epilogue: in the column-major
   * problem D = out^T, whose rows are our N columns, so EPILOGUE_BIAS (one value per row of D, broadcast over
   * its columns) adds bias[j] to column j of out. Saves the separate pass that writes the bias into out and
   * lets the call overwrite (beta = 0), so it is autotuned like any linear layer. 2-D operands of one dtype
   * (bias included), out with row-major rows; false when that does not hold (the caller falls back).
   */
  boolean matmulBias(Tensor a, Tensor b, Tensor bias, Tensor out) {
    if (out.rank() != 2 || a.rank() != 2 || b.rank() != 2 || bias.rank() != 1) return false;
    return epilogueMatmul(a, b, bias, null, null, out);
  }

  /**
   * pre = a·b + bias and out = GELU(pre) in one cuBLASLt call (EPILOGUE_GELU_AUX_BIAS: D = out, the auxiliary
   * output = pre, laid out as D): only for the tanh GELU, which is the form cuBLASLt's epilogue computes
   * ({@code CudaLinearGeluTest} checks it against both forms on f32 outputs, where they differ by up to 2e-4),
   * and only for 16-bit outputs, whose rounding (an ulp of 2^-8 or 2^-11 relative) is far coarser than any
   * difference between the epilogue's f32 arithmetic and our kernel's. pre and out: 2-D, the same shape, dtype and
   * leading dimension (a multiple of 8), not overlapping.
   */
  boolean matmulBiasGelu(io.colossal4j.backend.UnaryOp gelu, Tensor a, Tensor b, Tensor bias, Tensor pre, Tensor out) {
    if (!geluEpilogue || gelu != io.colossal4j.backend.UnaryOp.GELU_TANH) return false;
    if (!(out.dtype() == DType.BF16 || out.dtype() == DType.F16) && !geluEpilogueAnyDtype) return false;
    if (out.rank() != 2 || pre.rank() != 2 || a.rank() != 2 || b.rank() != 2 || bias == null || bias.rank() != 1) return false;
    if (!pre.shape().equals(out.shape()) || pre.dtype() != out.dtype() || pre.storage() == out.storage() || pre.stride(0) != out.stride(0)
        || pre.stride(1) != 1 || pre.stride(0) % 8 != 0) return false;
    if (!epilogueMatmul(a, b, bias, null, pre, out)) return false;
    geluGemms.incrementAndGet();
    return true;
  }

  /** How many GEMMs applied the GELU in their epilogue so far: tests check the fused path ran. */
  private final java.util.concurrent.atomic.AtomicLong geluGemms = new java.util.concurrent.atomic.AtomicLong();

  long geluGemms() { return geluGemms.get(); }

  /** Test switch: the GELU epilogue for f32 outputs too (to see which form it computes). */
  volatile boolean geluEpilogueAnyDtype;
  /** Whether the GELU epilogue is used at all ({@link CudaBackend#useGeluEpilogue}). */
  volatile boolean geluEpilogue = true;

  long residualGemms() { return residualGemms.get(); }

  /**
   * out[M, N] = residual[M, N] + a[M, K] b[K, N] (+ bias[N]) in one cuBLASLt call: D = A·B + 1·C (+ the bias
   * epilogue) with C = the residual, a separate buffer, which cuBLASLt allows when C has D's dtype, shape and
   * memory order (its leading dimension may differ). The product, bias and residual meet in f32 and are rounded
   * once. residual: 2-D, out's shape and dtype, row-major rows, not out's storage (C is only read, so timing
   * the candidate algorithms on the real buffers leaves it unchanged and overwrites only out). C and D must
   * start 256-byte aligned, the alignment cuBLASLt's heuristic assumes by default (fresh allocations are);
   * false, nothing written, when any of this does not hold.
   */
  boolean matmulResidual(Tensor a, Tensor b, Tensor bias, Tensor residual, Tensor out) {
    if (out.rank() != 2 || a.rank() != 2 || b.rank() != 2 || residual.rank() != 2 || (bias != null && bias.rank() != 1)) return false;
    if (!residual.shape().equals(out.shape()) || residual.dtype() != out.dtype() || residual.storage() == out.storage()) return false;
    if (!epilogueMatmul(a, b, bias, residual, null, out)) return false;
    residualGemms.incrementAndGet();
    return true;
  }

  /**
   * out[M, N] = a[M, K]·b[K, N] (+ residual[M, N] when non-null) (+ vec[N], the bias epilogue, when non-null):
   * one dtype for all, out (and residual) with row-major rows, vec contiguous and 16-byte aligned. (The
   * bias-gradient epilogue BGRADB for the backward was measured on an H200 and dropped: its GEMMs ran 10–25%
   * slower than plain ones plus the column sum.)
   */
  private boolean epilogueMatmul(Tensor a, Tensor b, Tensor vec, Tensor residual, Tensor aux, Tensor out) {
    DType t = out.dtype();
    if (a.dtype() != t || b.dtype() != t || (vec != null && vec.dtype() != t) || !(t == DType.F32 || t == DType.BF16 || t == DType.F16)) return false;
    long m = out.size(0), n = out.size(1), kk = a.size(1);
    if (m == 0 || n == 0 || kk == 0 || a.size(0) != m || b.size(0) != kk || b.size(1) != n) return false;
    if (vec != null && (vec.size(0) != n || (n > 1 && vec.stride(0) != 1))) return false;
    Object ao = layoutOf(m, kk, a.stride(0), a.stride(1)), bo = layoutOf(kk, n, b.stride(0), b.stride(1)), oo = layoutOf(m, n, out.stride(0), out.stride(1));
    Object co = residual == null ? oo : layoutOf(m, n, residual.stride(0), residual.stride(1));
    if (!(ao instanceof Mat am) || !(bo instanceof Mat bm) || !(oo instanceof Mat om) || !om.rowMajor() || !(co instanceof Mat cm) || !cm.rowMajor()) return false;
    int es = t.byteSize();
    long pa = k.ptr(a) + a.offset() * es, pb = k.ptr(b) + b.offset() * es, po = k.ptr(out) + out.offset() * es;
    long pc = residual == null ? po : k.ptr(residual) + residual.offset() * es;
    long pVec = vec == null ? 0 : k.ptr(vec) + vec.offset() * es;
    if (pVec % 16 != 0) return false;   // cuBLASLt's alignment for the bias vector
    if (residual != null && (pc % 256 != 0 || po % 256 != 0)) return false;
    long pAux = aux == null ? 0 : k.ptr(aux) + aux.offset() * es;
    if (aux != null && (pAux % 256 != 0 || po % 256 != 0)) return false;
    Beta beta = residual == null ? Beta.NONE : Beta.FROM_C;
    Problem p = new Problem(blasType(t), bm.rowMajor() ? CublasLt.OP_N : CublasLt.OP_T, am.rowMajor() ? CublasLt.OP_N : CublasLt.OP_T,
        n, m, kk, bm.ld(), am.ld(), cm.ld(), om.ld(), 1, 0, 0, 0, beta,
        aux != null ? CublasLt.EPILOGUE_GELU_AUX_BIAS : vec == null ? CublasLt.EPILOGUE_DEFAULT : CublasLt.EPILOGUE_BIAS);
    Plan plan = plan(p, new long[] {pa, pb, pc, po}, pVec, pAux);
    if (plan == null) return false;
    CublasLt lt = k.backend().cublasLt();
    k.backend().enter();
    CudaProfiler prof = k.backend().profiler();
    synchronized (this) {   // the vector's pointer is an attribute of the shared plan's descriptor
      if (vec != null) lt.setDescLong(plan.desc, CublasLt.DESC_BIAS_POINTER, pVec);
      if (aux != null) lt.setDescLong(plan.desc, CublasLt.DESC_EPILOGUE_AUX_POINTER, pAux);
      if (prof != null) prof.begin(p.describe());
      lt.matmul(handle, plan.desc, one, pb, plan.layoutA, pa, plan.layoutB, beta == Beta.NONE ? zero : one, pc, plan.layoutC, po, plan.layoutD,
          plan.algo, k.ptr(workspaceTensor()), WORKSPACE_BYTES, k.backend().stream());
      if (prof != null) prof.end();
    }
    return true;
  }

  private Tensor workspaceView, sideWorkspaceView;

  /** The side stream's workspace: its GEMMs run while the main stream's use the other. */
  private Tensor sideWorkspace() {
    if (sideWorkspaceView == null) sideWorkspaceView = k.backend().persistent(Shape.of((int) WORKSPACE_BYTES), DType.BOOL);
    return sideWorkspaceView;
  }

  private Tensor workspaceTensor() {
    if (workspaceView == null) {
      workspaceView = k.backend().persistent(Shape.of((int) WORKSPACE_BYTES), DType.BOOL);
      workspace = workspaceView.storage();
    }
    return workspaceView;
  }

  /**
   * The cached plan of {@code p}, else a new one (null when cuBLASLt has no algorithm for it). {@code pointers}:
   * {a, b, c, d} of the call, to time the candidates on (null: take the heuristic's first, for problems that
   * accumulate into D, which a timing run would change); {@code biasPointer}: the bias of an epilogue problem, else 0.
   */
  private synchronized Plan plan(Problem p, long[] pointers, long biasPointer, long auxPointer) {
    Plan cached = plans.get(p);
    if (cached != null) return cached;
    CublasLt lt = k.backend().cublasLt();
    k.backend().enter();
    if (handle == 0) handle = lt.create();
    if (plans.size() >= MAX_PLANS) clearPlans();
    long desc = lt.matmulDesc(CublasLt.COMPUTE_32F, CublasLt.R_32F);
    lt.setDescInt(desc, CublasLt.DESC_TRANSA, p.opA());
    lt.setDescInt(desc, CublasLt.DESC_TRANSB, p.opB());
    if (p.epilogue() != CublasLt.EPILOGUE_DEFAULT) {
      lt.setDescInt(desc, CublasLt.DESC_EPILOGUE, p.epilogue());
      lt.setDescInt(desc, CublasLt.DESC_BIAS_DATA_TYPE, p.dataType());
      lt.setDescLong(desc, CublasLt.DESC_BIAS_POINTER, biasPointer);
    }
    if (p.epilogue() == CublasLt.EPILOGUE_GELU_AUX_BIAS) {   // the pre-activation, laid out as D
      lt.setDescLong(desc, CublasLt.DESC_EPILOGUE_AUX_POINTER, auxPointer);
      lt.setDescLong(desc, CublasLt.DESC_EPILOGUE_AUX_LD, p.ldd());
    }
    long la = p.opA() == CublasLt.OP_N ? lt.layout(p.dataType(), p.m(), p.kk(), p.lda()) : lt.layout(p.dataType(), p.kk(), p.m(), p.lda());
    long lb = p.opB() == CublasLt.OP_N ? lt.layout(p.dataType(), p.kk(), p.n(), p.ldb()) : lt.layout(p.dataType(), p.n(), p.kk(), p.ldb());
    long ld = lt.layout(p.dataType(), p.m(), p.n(), p.ldd());
    // a separate C: same dtype, shape and (column-major) order as D, its own leading dimension (no batch: 2-D only)
    long lc = p.beta() == Beta.FROM_C ? lt.layout(p.dataType(), p.m(), p.n(), p.ldc()) : ld;
    if (p.batch() > 1) {
      for (long[] l : new long[][] {{la, p.strideA()}, {lb, p.strideB()}, {ld, p.strideD()}}) {
        lt.setLayoutInt(l[0], CublasLt.LAYOUT_BATCH_COUNT, p.batch());
        lt.setLayoutLong(l[0], CublasLt.LAYOUT_STRIDED_BATCH_OFFSET, l[1]);
      }
    }
    long pref = lt.preference();
    lt.setPreferenceLong(pref, CublasLt.PREF_MAX_WORKSPACE_BYTES, WORKSPACE_BYTES);
    MemorySegment results = plansArena.allocate(CublasLt.HEURISTIC_RESULT_BYTES * CANDIDATES, 16);
    int found = lt.heuristics(handle, desc, la, lb, lc, ld, pref, CANDIDATES, results);
    lt.destroyPreference(pref);
    Plan plan = new Plan(desc, la, lb, lc, ld, results.asSlice(0, CublasLt.HEURISTIC_RESULT_BYTES), "heuristic#0");
    if (found == 0) {
      destroy(lt, plan);
      return null;
    }
    if (pointers != null) {
      List<Candidate> candidates = new ArrayList<>();
      for (int i = 0; i < found; i++)
        candidates.add(new Candidate("heuristic#" + i, results.asSlice(i * CublasLt.HEURISTIC_RESULT_BYTES, CublasLt.HEURISTIC_RESULT_BYTES)));
      candidates.removeIf(c -> !accept.test(c.name()));
      if (candidates.size() > 1 || (candidates.size() == 1 && !candidates.getFirst().name().equals("heuristic#0")))
        plan = plan.with(fastest(lt, plan, p, candidates, pointers));
    }
    plans.put(p, plan);
    return plan;
  }

  /**
   * Times each candidate algorithm (one warm-up, then the median of three event-timed runs) on the problem's
   * own buffers {a, b, c, d} and returns the fastest; the heuristic's first choice is not always the fastest on
   * Hopper. Only for problems that overwrite D (beta = 0, or beta = 1 with a separate C that the runs only read):
   * the runs write D, which the real call then overwrites.
   */
  private Candidate fastest(CublasLt lt, Plan first, Problem p, List<Candidate> candidates, long[] ptrs) {
    Beta beta = p.beta();
    if (beta == Beta.INTO_D) throw new IllegalStateException("timing a GEMM that accumulates into D would change D");
    MemorySegment betaValue = beta == Beta.NONE ? zero : one;
    var d = k.backend().driver();
    k.backend().joinSideWork();   // the candidates run alone on the main stream, after any side job
    long stream = k.backend().stream(), ws = k.ptr(workspaceTensor());
    long start = d.eventCreate(), end = d.eventCreate();
    Candidate best = null;
    float bestMs = Float.MAX_VALUE;
    java.io.PrintStream log = tuneLog;
    StringBuilder times = new StringBuilder();
    try {
      for (Candidate c : candidates) {
        float[] ms = new float[3];
        try {
          lt.matmul(handle, first.desc, one, ptrs[1], first.layoutA, ptrs[0], first.layoutB, betaValue, ptrs[2], first.layoutC, ptrs[3], first.layoutD,
              c.algo(), ws, WORKSPACE_BYTES, stream);
          for (int r = 0; r < ms.length; r++) {
            d.eventRecord(start, stream);
            lt.matmul(handle, first.desc, one, ptrs[1], first.layoutA, ptrs[0], first.layoutB, betaValue, ptrs[2], first.layoutC, ptrs[3], first.layoutD,
                c.algo(), ws, WORKSPACE_BYTES, stream);
            d.eventRecord(end, stream);
            d.eventSynchronize(end);
            ms[r] = d.elapsedMillis(start, end);
          }
        } catch (io.colossal4j.backend.cuda.ffi.CudaException e) {
          continue; // a candidate the library offered but cannot run here: skip it
        }
        Arrays.sort(ms);
        if (ms[1] < bestMs) { bestMs = ms[1]; best = c; }
        if (log != null) times.append(String.format(java.util.Locale.ROOT, " %s=%.3f", c.name(), ms[1]));
      }
    } finally {
      d.eventDestroy(start);
      d.eventDestroy(end);
    }
    if (log != null) log.printf("gemm tuning %s: %s=%.3f ms of%s%n", p.describe(), best == null ? "none" : best.name(), bestMs, times);
    // none ran: keep the heuristic's first, whose real call then reports cuBLASLt's error
    return best != null ? best : new Candidate("heuristic#0", first.algo());
  }

  private void clearPlans() {
    CublasLt lt = k.backend().cublasLt();
    k.backend().synchronize();
    for (Plan p : plans.values()) destroy(lt, p);
    plans.clear();
  }

  private static void destroy(CublasLt lt, Plan p) {
    lt.destroyLayout(p.layoutA);
    lt.destroyLayout(p.layoutB);
    if (p.layoutC != p.layoutD) lt.destroyLayout(p.layoutC);
    lt.destroyLayout(p.layoutD);
    lt.destroyMatmulDesc(p.desc);
  }

  // ------------------------------------------------------------- generic kernel

  private void generic(Tensor a, Tensor b, Tensor out, boolean accumulate, long pa, long pb, long po) {
    int r = out.rank();
    int m = out.size(-2), n = out.size(-1), kk = a.size(-1);
    Shape batch = Shape.of(Arrays.copyOf(out.shape().toArray(), r - 2));
    CudaGeometry.Space s = CudaGeometry.coalesce(batch,
        new long[][] {Arrays.copyOf(a.strides(), r - 2), Arrays.copyOf(b.strides(), r - 2), Arrays.copyOf(out.strides(), r - 2)},
        new long[] {a.offset(), b.offset(), out.offset()});
    long gx = (n + 15) / 16, gy = (m + 15) / 16;
    if (gy > 65535) throw new TensorException("matmul: " + m + " rows exceed the generic kernel's grid (" + 65535 * 16 + ")");
    Dim3 grid = new Dim3((int) gx, (int) gy, (int) Math.min(s.numel(), 65535));
    String name = CudaKernels.variant("matmul", a, b, out);
    k.launch(name, grid, Dim3.of(16, 16), (ar, args) -> args.struct(CudaGeometry.geom(ar, s, "matmul"))
        .i32(m).i32(n).i32(kk).i64(a.stride(-2)).i64(a.stride(-1)).i64(b.stride(-2)).i64(b.stride(-1))
        .i64(out.stride(-2)).i64(out.stride(-1)).i32(accumulate ? 1 : 0).ptr(pa).i32(dt(a)).ptr(pb).i32(dt(b)).ptr(po).i32(dt(out)));
  }

  @Override public synchronized void close() {
    if (handle != 0) {
      clearPlans();
      k.backend().cublasLt().destroy(handle);
      handle = 0;
    }
    if (workspace != null) workspace.release();
    if (sideWorkspaceView != null) sideWorkspaceView.storage().release();
  }
}
