package io.colossal4j.distributed.cpu;

import io.colossal4j.distributed.Reduction;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * The collective algorithms over point-to-point messages, in group-rank space (n members, this one r).
 *
 * <p>Small messages take the direct path: every member sends its whole buffer to every other (one
 * message latency, n-1 times the data). Large ones take the ring (Patarasuk and Yuan 2009): reduce-scatter
 * then all-gather, each member sending 2(n-1)/n of the data, which is bandwidth-optimal. In the ring, member
 * r ends the reduce-scatter owning chunk r; chunk c of N elements is [N*c/n, N*(c+1)/n), so sizes that n
 * does not divide work. Reductions combine contributions in one fixed order per chunk and every member
 * copies the result, so all members end with bit-identical values.
 *
 * <p>A {@link Buf} is a region of memory: segment, byte offset of element 0, element size.
 */
final class Algorithms {
  private Algorithms() {}

  /** At or below this many bytes, collectives take the direct (latency-optimal) path. */
  static final long SMALL_BYTES = 64 << 10;

  record Buf(MemorySegment seg, long off, int es) {
    long at(long element) { return off + element * es; }
  }

  static long chunkStart(long numel, int n, int c) { return numel * c / n; }

  private static int mod(int a, int n) { return ((a % n) + n) % n; }

  /** Ring reduce-scatter in place over x's numel elements: afterwards this member's chunk r is reduced. Steps 0..n-2. */
  static void ringReduceScatter(OpRun run, Buf x, long numel, Reduction op) {
    int n = run.group.size(), r = run.group.rank(), right = mod(r + 1, n), left = mod(r - 1, n);
    for (int s = 0; s < n - 1; s++) {
      int sendC = mod(r - s - 1, n), recvC = mod(r - s - 2, n);
      long s0 = chunkStart(numel, n, sendC), s1 = chunkStart(numel, n, sendC + 1);
      long r0 = chunkStart(numel, n, recvC), r1 = chunkStart(numel, n, recvC + 1);
      run.send(right, s, x.seg, x.at(s0), (s1 - s0) * x.es);
      run.recv(left, s, x.seg, x.at(r0), (r1 - r0) * x.es, op);
    }
  }

  /** Ring all-gather in place: member c's chunk c is circulated to everyone. Steps base..base+n-2. */
  static void ringAllGather(OpRun run, Buf x, long numel, int base) {
    int n = run.group.size(), r = run.group.rank(), right = mod(r + 1, n), left = mod(r - 1, n);
    for (int s = 0; s < n - 1; s++) {
      int sendC = mod(r - s, n), recvC = mod(r - s - 1, n);
      long s0 = chunkStart(numel, n, sendC), s1 = chunkStart(numel, n, sendC + 1);
      long r0 = chunkStart(numel, n, recvC), r1 = chunkStart(numel, n, recvC + 1);
      run.send(right, base + s, x.seg, x.at(s0), (s1 - s0) * x.es);
      run.recv(left, base + s, x.seg, x.at(r0), (r1 - r0) * x.es, null);
    }
  }

  /**
   * Direct reduction: member r's result over {@code count} elements = contributions of members 0..n-1 in
   * rank order (member j's contribution arrives as step 0 from j; this member's own is {@code own}). The
   * result is written to {@code out}.
   */
  static void directCombine(OpRun run, Buf own, Buf out, long count, Reduction op) {
    int n = run.group.size(), r = run.group.rank();
    long bytes = count * own.es;
    MemorySegment acc = Elementwise.buffer(bytes);
    for (int j = 0; j < n; j++) {
      if (j == 0 && r == 0) MemorySegment.copy(own.seg, own.off, acc, 0, bytes);
      else if (j == 0) run.recv(0, 0, acc, 0, bytes, null);
      else if (j == r) Elementwise.accumulate(op, run.dtype, acc, 0, own.seg, own.off, count);
      else run.recv(j, 0, acc, 0, bytes, op);
    }
    MemorySegment.copy(acc, 0, out.seg, out.off, bytes);
  }

  /** Through messages: direct for small tensors, ring for large ones (members on one host use shared memory instead). */
  static void allReduce(OpRun run, Buf x, long numel, Reduction op) {
    int n = run.group.size(), r = run.group.rank();
    long bytes = numel * x.es;
    if (bytes <= SMALL_BYTES || n == 1) {
      for (int j = 0; j < n; j++) if (j != r) run.send(j, 0, x.seg, x.off, bytes);
      directCombine(run, x, x, numel, op);
    } else {
      ringReduceScatter(run, x, numel, op);
      ringAllGather(run, x, numel, n);
    }
    if (op == Reduction.AVG) Elementwise.divide(run.dtype, x.seg, x.off, numel, n);
  }

  /** out (m elements) = reduction of chunk r of every member's in (n*m elements). */
  static void reduceScatter(OpRun run, Buf out, Buf in, long m, Reduction op) {
    int n = run.group.size(), r = run.group.rank();
    if (m * in.es <= SMALL_BYTES || n == 1) {
      for (int j = 0; j < n; j++) if (j != r) run.send(j, 0, in.seg, in.at(j * m), m * in.es);
      directCombine(run, new Buf(in.seg, in.at(r * m), in.es), out, m, op);
    } else {
      try (Arena arena = Arena.ofConfined()) {
        MemorySegment tmp = arena.allocate(n * m * in.es, 64);
        MemorySegment.copy(in.seg, in.off, tmp, 0, n * m * in.es);
        ringReduceScatter(run, new Buf(tmp, 0, in.es), n * m, op);
        MemorySegment.copy(tmp, r * m * in.es, out.seg, out.off, m * in.es);
      }
    }
    if (op == Reduction.AVG) Elementwise.divide(run.dtype, out.seg, out.off, m, n);
  }

  /** out (n*m elements) = every member's in (m elements) in rank order. */
  static void allGather(OpRun run, Buf out, Buf in, long m) {
    int n = run.group.size(), r = run.group.rank();
    MemorySegment.copy(in.seg, in.off, out.seg, out.at(r * m), m * in.es);
    if (m * in.es <= SMALL_BYTES) {
      for (int j = 0; j < n; j++) if (j != r) run.send(j, 0, in.seg, in.off, m * in.es);
      for (int j = 0; j < n; j++) if (j != r) run.recv(j, 0, out.seg, out.at(j * m), m * in.es, null);
    } else {
      ringAllGather(run, out, n * m, 0);
    }
  }

  /** Direct for small tensors; scatter from the root then ring all-gather for large ones. */
  static void broadcast(OpRun run, Buf x, long numel, int root) {
    int n = run.group.size(), r = run.group.rank();
    long bytes = numel * x.es;
    if (bytes <= SMALL_BYTES || n <= 2) {
      if (r == root) {
        for (int j = 0; j < n; j++) if (j != r) run.send(j, 0, x.seg, x.off, bytes);
      } else {
        run.recv(root, 0, x.seg, x.off, bytes, null);
      }
      return;
    }
    long c0 = chunkStart(numel, n, r), c1 = chunkStart(numel, n, r + 1);
    if (r == root) {
      for (int j = 0; j < n; j++) {
        if (j == r) continue;
        long j0 = chunkStart(numel, n, j), j1 = chunkStart(numel, n, j + 1);
        run.send(j, 0, x.seg, x.at(j0), (j1 - j0) * x.es);
      }
    } else {
      run.recv(root, 0, x.seg, x.at(c0), (c1 - c0) * x.es, null);
    }
    ringAllGather(run, x, numel, 1);
  }

  /** x on root = reduction over members; others unchanged. */
  static void reduce(OpRun run, Buf x, long numel, int root, Reduction op) {
    int n = run.group.size(), r = run.group.rank();
    long bytes = numel * x.es;
    if (bytes <= SMALL_BYTES || n == 1) {
      if (r != root) {
        run.send(root, 0, x.seg, x.off, bytes);
        return;
      }
      directCombine(run, x, x, numel, op);
    } else {
      try (Arena arena = Arena.ofConfined()) {
        MemorySegment tmp = arena.allocate(bytes, 64);
        MemorySegment.copy(x.seg, x.off, tmp, 0, bytes);
        ringReduceScatter(run, new Buf(tmp, 0, x.es), numel, op);
        long c0 = chunkStart(numel, n, r), c1 = chunkStart(numel, n, r + 1);
        if (r != root) {
          run.send(root, n, tmp, c0 * x.es, (c1 - c0) * x.es);
          return;
        }
        MemorySegment.copy(tmp, c0 * x.es, x.seg, x.at(c0), (c1 - c0) * x.es);
        for (int j = 0; j < n; j++) {
          if (j == r) continue;
          long j0 = chunkStart(numel, n, j), j1 = chunkStart(numel, n, j + 1);
          run.recv(j, n, x.seg, x.at(j0), (j1 - j0) * x.es, null);
        }
      }
    }
    if (op == Reduction.AVG) Elementwise.divide(run.dtype, x.seg, x.off, numel, n);
  }

  static void allToAll(OpRun run, Buf out, Buf in, long m) {
    int n = run.group.size(), r = run.group.rank();
    MemorySegment.copy(in.seg, in.at(r * m), out.seg, out.at(r * m), m * in.es);
    for (int j = 0; j < n; j++) if (j != r) run.send(j, 0, in.seg, in.at(j * m), m * in.es);
    for (int j = 0; j < n; j++) if (j != r) run.recv(j, 0, out.seg, out.at(j * m), m * in.es, null);
  }

  static void barrier(OpRun run) {
    int n = run.group.size(), r = run.group.rank();
    for (int j = 0; j < n; j++) if (j != r) run.sendSignal(j, 0);
    for (int j = 0; j < n; j++) if (j != r) run.recvSignal(j, 0);
  }
}
