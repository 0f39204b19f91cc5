package io.colossal4j.backend.cuda.ffi;

import static io.colossal4j.backend.cuda.ffi.Binder.I;
import static io.colossal4j.backend.cuda.ffi.Binder.J;
import static io.colossal4j.backend.cuda.ffi.Binder.P;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

/**
 * cuBLASLt (libcublasLt): matmul descriptors, matrix layouts, algorithm heuristics and the matmul itself
 * (column-major, strided-batched, with bias/GELU epilogues). Descriptors are opaque 64-bit handles owned by
 * the caller, who destroys them. Every status is checked and reported with cublasLtGetStatusString.
 */
public final class CublasLt {
  // cudaDataType_t
  public static final int R_32F = 0, R_64F = 1, R_16F = 2, R_16BF = 14;
  // cublasComputeType_t
  public static final int COMPUTE_32F = 68, COMPUTE_32F_FAST_TF32 = 77, COMPUTE_64F = 70;
  // cublasLtMatmulDescAttributes_t
  public static final int DESC_TRANSA = 3, DESC_TRANSB = 4, DESC_EPILOGUE = 7, DESC_BIAS_POINTER = 8, DESC_BIAS_DATA_TYPE = 26;
  public static final int DESC_EPILOGUE_AUX_POINTER = 11, DESC_EPILOGUE_AUX_LD = 12;
  // cublasLtMatrixLayoutAttribute_t
  public static final int LAYOUT_BATCH_COUNT = 5, LAYOUT_STRIDED_BATCH_OFFSET = 6;
  public static final int PREF_MAX_WORKSPACE_BYTES = 1;
  public static final int OP_N = 0, OP_T = 1;
  // cublasLtEpilogue_t
  public static final int EPILOGUE_DEFAULT = 1, EPILOGUE_BIAS = 4, EPILOGUE_GELU = 32, EPILOGUE_GELU_BIAS = 36, EPILOGUE_GELU_AUX_BIAS = 164;
  /** sizeof(cublasLtMatmulHeuristicResult_t): algo (8 x u64), workspaceSize, state, wavesCount, reserved[4]. */
  public static final long HEURISTIC_RESULT_BYTES = 96;

  private final MethodHandle create, destroy, getVersion, descCreate, descDestroy, descSet, layoutCreate, layoutDestroy, layoutSet,
      prefCreate, prefDestroy, prefSet, heuristic, matmul, statusString;

  private CublasLt(Binder b) {
    create = b.status("cublasLtCreate", P);
    destroy = b.status("cublasLtDestroy", J);
    getVersion = b.handle("cublasLtGetVersion", FunctionDescriptor.of(J));
    descCreate = b.status("cublasLtMatmulDescCreate", P, I, I);
    descDestroy = b.status("cublasLtMatmulDescDestroy", J);
    descSet = b.status("cublasLtMatmulDescSetAttribute", J, I, P, J);
    layoutCreate = b.status("cublasLtMatrixLayoutCreate", P, I, J, J, J);
    layoutDestroy = b.status("cublasLtMatrixLayoutDestroy", J);
    layoutSet = b.status("cublasLtMatrixLayoutSetAttribute", J, I, P, J);
    prefCreate = b.status("cublasLtMatmulPreferenceCreate", P);
    prefDestroy = b.status("cublasLtMatmulPreferenceDestroy", J);
    prefSet = b.status("cublasLtMatmulPreferenceSetAttribute", J, I, P, J);
    heuristic = b.status("cublasLtMatmulAlgoGetHeuristic", J, J, J, J, J, J, J, I, P, P);
    matmul = b.status("cublasLtMatmul", J, J, P, J, J, J, J, P, J, J, J, J, P, J, J, J);
    statusString = b.handle("cublasLtGetStatusString", FunctionDescriptor.of(P, I));
  }

  public static CublasLt load(LibraryLocator locator, Arena arena) {
    return new CublasLt(new Binder(locator.open(LibraryLocator.CUBLASLT, arena), "libcublasLt"));
  }

  private void check(int status, String fn) {
    if (status == 0) return;
    String text;
    try {
      text = Binder.cString((MemorySegment) statusString.invokeExact(status));
    } catch (Throwable t) {
      throw Binder.rethrow(t);
    }
    throw new CudaException("libcublasLt " + fn + " failed: " + text + " (" + status + ")", status);
  }

  private static int invoke(MethodHandle h, Object... args) {
    try {
      return (int) h.invokeWithArguments(args);
    } catch (Throwable t) {
      throw Binder.rethrow(t);
    }
  }

  private long createHandle(MethodHandle h, String fn, Object... rest) {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment out = a.allocate(J);
      Object[] args = new Object[rest.length + 1];
      args[0] = out;
      System.arraycopy(rest, 0, args, 1, rest.length);
      check(invoke(h, args), fn);
      return out.get(J, 0);
    }
  }

  public long version() {
    try {
      return (long) getVersion.invokeExact();
    } catch (Throwable t) {
      throw Binder.rethrow(t);
    }
  }

  public long create() { return createHandle(create, "cublasLtCreate"); }

  public void destroy(long handle) { check(invoke(destroy, handle), "cublasLtDestroy"); }

  public long matmulDesc(int computeType, int scaleType) { return createHandle(descCreate, "cublasLtMatmulDescCreate", computeType, scaleType); }

  public void destroyMatmulDesc(long desc) { check(invoke(descDestroy, desc), "cublasLtMatmulDescDestroy"); }

  public void setDescInt(long desc, int attribute, int value) { setAttr(descSet, "cublasLtMatmulDescSetAttribute", desc, attribute, value); }

  public void setDescLong(long desc, int attribute, long value) { setAttr(descSet, "cublasLtMatmulDescSetAttribute", desc, attribute, value); }

  /** A column-major matrix layout: rows x cols with leading dimension {@code ld} (>= rows). */
  public long layout(int dataType, long rows, long cols, long ld) {
    if (rows < 1 || cols < 1 || ld < rows)
      throw new CudaException("cublasLtMatrixLayoutCreate: need rows, cols >= 1 and ld >= rows, got " + rows + "x" + cols + " ld " + ld);
    return createHandle(layoutCreate, "cublasLtMatrixLayoutCreate", dataType, rows, cols, ld);
  }

  public void destroyLayout(long layout) { check(invoke(layoutDestroy, layout), "cublasLtMatrixLayoutDestroy"); }

  public void setLayoutInt(long layout, int attribute, int value) { setAttr(layoutSet, "cublasLtMatrixLayoutSetAttribute", layout, attribute, value); }

  public void setLayoutLong(long layout, int attribute, long value) { setAttr(layoutSet, "cublasLtMatrixLayoutSetAttribute", layout, attribute, value); }

  public long preference() { return createHandle(prefCreate, "cublasLtMatmulPreferenceCreate"); }

  public void destroyPreference(long pref) { check(invoke(prefDestroy, pref), "cublasLtMatmulPreferenceDestroy"); }

  public void setPreferenceLong(long pref, int attribute, long value) { setAttr(prefSet, "cublasLtMatmulPreferenceSetAttribute", pref, attribute, value); }

  private void setAttr(MethodHandle h, String fn, long obj, int attribute, Object value) {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment buf;
      if (value instanceof Integer i) buf = a.allocateFrom(I, i);
      else buf = a.allocateFrom(J, (Long) value);
      check(invoke(h, obj, attribute, buf, buf.byteSize()), fn + "(" + attribute + ")");
    }
  }

  /**
   * Up to {@code requested} algorithms for the problem, best first, written to {@code resultsOut} (an array of
   * cublasLtMatmulHeuristicResult_t, {@link #HEURISTIC_RESULT_BYTES} each); returns how many (0: none fits).
   */
  public int heuristics(long handle, long desc, long a, long b, long c, long d, long pref, int requested, MemorySegment resultsOut) {
    if (requested < 1 || resultsOut.byteSize() < requested * HEURISTIC_RESULT_BYTES)
      throw new CudaException("heuristic result buffer of " + resultsOut.byteSize() + " bytes cannot hold " + requested + " results");
    try (Arena ar = Arena.ofConfined()) {
      MemorySegment count = ar.allocate(I);
      int st = invoke(heuristic, handle, desc, a, b, c, d, pref, requested, resultsOut, count);
      if (st == 15) return 0; // CUBLAS_STATUS_NOT_SUPPORTED: no algorithm for this problem
      check(st, "cublasLtMatmulAlgoGetHeuristic");
      return count.get(I, 0);
    }
  }

  /**
   * D = alpha * op(A) op(B) + beta * C on {@code stream}. alpha/beta are host scalars of the scale type;
   * {@code algo} is the result buffer filled by {@link #heuristic} (the algorithm is its first 64 bytes).
   */
  public void matmul(long handle, long desc, MemorySegment alpha, long a, long aDesc, long b, long bDesc, MemorySegment beta,
                     long c, long cDesc, long d, long dDesc, MemorySegment algo, long workspace, long workspaceBytes, long stream) {
    if (a == 0 || b == 0 || c == 0 || d == 0) throw new CudaException("cublasLtMatmul: a null matrix pointer");
    if (workspaceBytes > 0 && workspace == 0) throw new CudaException("cublasLtMatmul: workspace of " + workspaceBytes + " bytes but a null pointer");
    try {
      int st = (int) matmul.invokeExact(handle, desc, alpha, a, aDesc, b, bDesc, beta, c, cDesc, d, dDesc, algo, workspace, workspaceBytes, stream);
      check(st, "cublasLtMatmul");
    } catch (Throwable t) {
      throw Binder.rethrow(t);
    }
  }
}
