package io.colossal4j.backend.cuda.ffi;

import static io.colossal4j.backend.cuda.ffi.Binder.I;
import static io.colossal4j.backend.cuda.ffi.Binder.J;
import static io.colossal4j.backend.cuda.ffi.Binder.P;

import io.colossal4j.tensor.DType;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * NCCL (libnccl.so.2): unique ids, communicators (created non-blocking, so a stuck creation can be aborted),
 * collectives, point-to-point, groups, the asynchronous error query and abort. Every {@code ncclResult_t} is
 * checked: a failure is a {@link CudaException} carrying ncclGetErrorString and, when a communicator is
 * involved, ncclGetLastError. {@code ncclInProgress} is not a failure: calls on a non-blocking communicator
 * return {@link #IN_PROGRESS} and the caller polls {@link #asyncError} until it is {@link #SUCCESS}.
 *
 * <p>Handles (communicators, streams) and device addresses travel as longs (see {@link Binder}). Thread-safety:
 * NCCL allows calls from any thread; calls that use a device need that device's context current.
 */
public final class Nccl {
  public static final int UNIQUE_ID_BYTES = 128;
  public static final int SUCCESS = 0, IN_PROGRESS = 7;
  /** NCCL_CONFIG_UNDEF_INT (INT_MIN): "let NCCL choose". */
  private static final int UNDEF = Integer.MIN_VALUE;
  private static final int API_MAGIC = 0xcafebeef;
  /**
   * We fill ncclConfig_t as NCCL 2.17 defined it (size, magic, version, blocking, cgaClusterSize, minCTAs, maxCTAs,
   * netName, splitShare: 48 bytes); NCCL reads a config by its size and version and defaults every later field.
   */
  private static final int CONFIG_VERSION = 21700, CONFIG_BYTES = 48;
  private static final StructLayout UNIQUE_ID = MemoryLayout.structLayout(MemoryLayout.sequenceLayout(UNIQUE_ID_BYTES, ValueLayout.JAVA_BYTE));

  /** ncclRedOp_t. */
  public enum RedOp {
    SUM(0), PROD(1), MAX(2), MIN(3), AVG(4);

    final int code;

    RedOp(int code) { this.code = code; }
  }

  private final MethodHandle getVersion, getUniqueId, initRankConfig, asyncError, abort, destroy, errorString, lastError,
      allReduce, reduceScatter, allGather, broadcast, reduce, send, recv, groupStart, groupEnd, split;

  private Nccl(Binder b) {
    getVersion = b.status("ncclGetVersion", P);
    getUniqueId = b.status("ncclGetUniqueId", P);
    initRankConfig = b.status("ncclCommInitRankConfig", P, I, UNIQUE_ID, I, P);
    asyncError = b.status("ncclCommGetAsyncError", J, P);
    abort = b.status("ncclCommAbort", J);
    destroy = b.status("ncclCommDestroy", J);
    errorString = b.handle("ncclGetErrorString", FunctionDescriptor.of(P, I));
    lastError = b.handle("ncclGetLastError", FunctionDescriptor.of(P, J));
    allReduce = b.status("ncclAllReduce", J, J, J, I, I, J, J);
    reduceScatter = b.status("ncclReduceScatter", J, J, J, I, I, J, J);
    allGather = b.status("ncclAllGather", J, J, J, I, J, J);
    broadcast = b.status("ncclBroadcast", J, J, J, I, I, J, J);
    reduce = b.status("ncclReduce", J, J, J, I, I, I, J, J);
    send = b.status("ncclSend", J, J, I, I, J, J);
    recv = b.status("ncclRecv", J, J, I, I, J, J);
    groupStart = b.status("ncclGroupStart");
    groupEnd = b.status("ncclGroupEnd");
    split = b.status("ncclCommSplit", J, I, I, P, P);
  }

  /** Opens libnccl through {@code locator} into {@code arena} (which must outlive this binding). */
  public static Nccl load(LibraryLocator locator, Arena arena) {
    return new Nccl(new Binder(locator.open(LibraryLocator.NCCL, arena), "libnccl"));
  }

  /** ncclDataType_t of a tensor dtype; bool has none (NCCL would treat it as bytes and reduce them numerically). */
  public static int dataType(DType d) {
    return switch (d) {
      case I32 -> 2;
      case I64 -> 4;
      case F16 -> 6;
      case F32 -> 7;
      case F64 -> 8;
      case BF16 -> 9;
      case BOOL -> throw new CudaException("NCCL has no bool type; use i32");
    };
  }

  /** "2.28.9" from NCCL_VERSION_CODE (major*10000 + minor*100 + patch since 2.9; major*1000 + minor*100 + patch before). */
  public static String versionText(int code) {
    if (code >= 10000) return code / 10000 + "." + code / 100 % 100 + "." + code % 100;
    return code / 1000 + "." + code / 100 % 10 + "." + code % 100;
  }

  // ------------------------------------------------------------------ errors

  @FunctionalInterface private interface Call { int run() throws Throwable; }

  private static int call(Call c) {
    try {
      return c.run();
    } catch (Throwable t) {
      throw Binder.rethrow(t);
    }
  }

  /** ncclGetErrorString of a status: "unhandled cuda error (run with NCCL_DEBUG=INFO for details)". */
  public String describe(int status) {
    try {
      return Binder.cString((MemorySegment) errorString.invokeExact(status));
    } catch (Throwable t) {
      throw Binder.rethrow(t);
    }
  }

  /** ncclGetLastError: NCCL's own text for the last failure on {@code comm} (0: the last failure of any call). */
  public String lastError(long comm) {
    try {
      return Binder.cString((MemorySegment) lastError.invokeExact(comm));
    } catch (Throwable t) {
      throw Binder.rethrow(t);
    }
  }

  /** Returns {@link #SUCCESS} or {@link #IN_PROGRESS}; anything else is thrown with NCCL's description. */
  private int check(int status, String fn, long comm) {
    if (status == SUCCESS || status == IN_PROGRESS) return status;
    String last = lastError(comm);
    throw new CudaException("libnccl " + fn + " failed: " + describe(status) + " (" + status + ")"
        + (last.isBlank() || last.equals("(null)") ? "" : "; NCCL says: " + last.strip()), status);
  }

  // ------------------------------------------------------------------ library and communicators

  /** ncclGetVersion: NCCL_VERSION_CODE of the loaded library (22809 is 2.28.9). */
  public int version() {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment v = a.allocate(I);
      check(call(() -> (int) getVersion.invokeExact(v)), "ncclGetVersion", 0);
      return v.get(I, 0);
    }
  }

  /** A fresh ncclUniqueId (128 bytes; it embeds this host's bootstrap address, so only one rank makes it). */
  public byte[] uniqueId() {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment id = a.allocate(UNIQUE_ID);
      check(call(() -> (int) getUniqueId.invokeExact(id)), "ncclGetUniqueId", 0);
      return id.toArray(ValueLayout.JAVA_BYTE);
    }
  }

  /**
   * Starts creating this rank's communicator of {@code nranks} from {@code id}, non-blocking: the handle comes
   * back at once and {@link #asyncError} says {@link #IN_PROGRESS} until every rank has joined (or
   * {@link #abort} ends it). Needs the device's context current on this thread.
   */
  public long initRankNonBlocking(int nranks, byte[] id, int rank) {
    if (id.length != UNIQUE_ID_BYTES) throw new CudaException("ncclCommInitRankConfig: unique id has " + id.length + " bytes, expected " + UNIQUE_ID_BYTES);
    if (nranks < 1 || rank < 0 || rank >= nranks) throw new CudaException("ncclCommInitRankConfig: rank " + rank + " is out of range for " + nranks + " ranks");
    try (Arena a = Arena.ofConfined()) {
      MemorySegment out = a.allocate(J);
      MemorySegment idSeg = a.allocate(UNIQUE_ID);
      MemorySegment.copy(id, 0, idSeg, ValueLayout.JAVA_BYTE, 0, UNIQUE_ID_BYTES);
      MemorySegment config = config(a, false, false);
      check(call(() -> (int) initRankConfig.invokeExact(out, nranks, idSeg, rank, config)), "ncclCommInitRankConfig", 0);
      return out.get(J, 0);
    }
  }

  /** An ncclConfig_t in {@code a}: blocking or not, sharing the parent's resources (for a split) or not. */
  private static MemorySegment config(Arena a, boolean blocking, boolean splitShare) {
    MemorySegment c = a.allocate(CONFIG_BYTES, 8);
    c.set(J, 0, (long) CONFIG_BYTES);
    c.set(I, 8, API_MAGIC);
    c.set(I, 12, CONFIG_VERSION);
    c.set(I, 16, blocking ? 1 : 0);
    c.set(I, 20, UNDEF);   // cgaClusterSize
    c.set(I, 24, UNDEF);   // minCTAs
    c.set(I, 28, UNDEF);   // maxCTAs
    c.set(J, 32, 0L);      // netName
    c.set(I, 40, splitShare ? 1 : 0);
    c.set(I, 44, 0);       // padding
    return c;
  }

  /**
   * A blocking communicator of the same ranks as {@code parent} (every rank passes color 0 and its rank as key),
   * sharing the parent's buffers and connections. Operations on a non-blocking communicator are launched by a
   * helper thread NCCL starts per call (hundreds of microseconds); creating non-blocking (abortable) and
   * operating on a blocking split gets both. Collective over the parent's ranks.
   *
   * <p>On a non-blocking parent the split completes in the background: NCCL writes the new handle when it is
   * done, so {@code awaitParent} must wait until the parent's asynchronous state leaves {@link #IN_PROGRESS}
   * (throwing if it fails) before the handle is read. The handle and config live in the global arena because
   * NCCL's helper thread may write them after this method has given up.
   */
  public long splitBlocking(long parent, int rank, Runnable awaitParent) {
    requireComm(parent, "ncclCommSplit");
    MemorySegment out = Arena.global().allocate(J);
    out.set(J, 0, 0L);
    MemorySegment config = config(Arena.global(), true, true);
    check(call(() -> (int) split.invokeExact(parent, 0, rank, out, config)), "ncclCommSplit", parent);
    awaitParent.run();
    long child = out.get(J, 0);
    if (child == 0) throw new CudaException("libnccl ncclCommSplit completed without a communicator for rank " + rank);
    return child;
  }

  /** ncclCommGetAsyncError: {@link #SUCCESS}, {@link #IN_PROGRESS}, or the error that ended the communicator (not thrown). */
  public int asyncError(long comm) {
    requireComm(comm, "ncclCommGetAsyncError");
    try (Arena a = Arena.ofConfined()) {
      MemorySegment v = a.allocate(I);
      int st = call(() -> (int) asyncError.invokeExact(comm, v));
      if (st != SUCCESS) return st;
      return v.get(I, 0);
    }
  }

  /** Frees the communicator and stops its operations still running on the device (safe while a peer is gone). */
  public void abort(long comm) {
    requireComm(comm, "ncclCommAbort");
    check(call(() -> (int) abort.invokeExact(comm)), "ncclCommAbort", 0);
  }

  /** Frees a communicator whose operations have finished. */
  public void destroy(long comm) {
    requireComm(comm, "ncclCommDestroy");
    check(call(() -> (int) destroy.invokeExact(comm)), "ncclCommDestroy", 0);
  }

  private static void requireComm(long comm, String fn) {
    if (comm == 0) throw new CudaException(fn + ": null communicator");
  }

  // ------------------------------------------------------------------ operations (queued on a stream; return SUCCESS or IN_PROGRESS)

  public int allReduce(long send, long recv, long count, int dtype, RedOp op, long comm, long stream) {
    requireComm(comm, "ncclAllReduce");
    return check(call(() -> (int) allReduce.invokeExact(send, recv, count, dtype, op.code, comm, stream)), "ncclAllReduce", comm);
  }

  /** {@code recvCount} elements per rank; send holds nranks * recvCount. */
  public int reduceScatter(long send, long recv, long recvCount, int dtype, RedOp op, long comm, long stream) {
    requireComm(comm, "ncclReduceScatter");
    return check(call(() -> (int) reduceScatter.invokeExact(send, recv, recvCount, dtype, op.code, comm, stream)), "ncclReduceScatter", comm);
  }

  /** {@code sendCount} elements from each rank; recv holds nranks * sendCount. */
  public int allGather(long send, long recv, long sendCount, int dtype, long comm, long stream) {
    requireComm(comm, "ncclAllGather");
    return check(call(() -> (int) allGather.invokeExact(send, recv, sendCount, dtype, comm, stream)), "ncclAllGather", comm);
  }

  public int broadcast(long send, long recv, long count, int dtype, int root, long comm, long stream) {
    requireComm(comm, "ncclBroadcast");
    return check(call(() -> (int) broadcast.invokeExact(send, recv, count, dtype, root, comm, stream)), "ncclBroadcast", comm);
  }

  public int reduce(long send, long recv, long count, int dtype, RedOp op, int root, long comm, long stream) {
    requireComm(comm, "ncclReduce");
    return check(call(() -> (int) reduce.invokeExact(send, recv, count, dtype, op.code, root, comm, stream)), "ncclReduce", comm);
  }

  public int send(long buf, long count, int dtype, int peer, long comm, long stream) {
    requireComm(comm, "ncclSend");
    return check(call(() -> (int) send.invokeExact(buf, count, dtype, peer, comm, stream)), "ncclSend", comm);
  }

  public int recv(long buf, long count, int dtype, int peer, long comm, long stream) {
    requireComm(comm, "ncclRecv");
    return check(call(() -> (int) recv.invokeExact(buf, count, dtype, peer, comm, stream)), "ncclRecv", comm);
  }

  /** Operations between groupStart and groupEnd are launched together (how send/recv pairs avoid deadlock). */
  public void groupStart() { check(call(() -> (int) groupStart.invokeExact()), "ncclGroupStart", 0); }

  /** Returns {@link #IN_PROGRESS} when a non-blocking communicator of the group is still launching. */
  public int groupEnd() { return check(call(() -> (int) groupEnd.invokeExact()), "ncclGroupEnd", 0); }
}
