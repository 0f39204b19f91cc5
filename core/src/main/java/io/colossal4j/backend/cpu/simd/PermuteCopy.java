package io.colossal4j.backend.cpu.simd;

import static io.colossal4j.backend.cpu.CpuBackend.segment;
import static io.colossal4j.backend.cpu.simd.RowOps.F;
import static io.colossal4j.backend.cpu.simd.RowOps.L;
import static io.colossal4j.backend.cpu.simd.VMath.S;

import io.colossal4j.backend.cpu.CpuParallel;
import io.colossal4j.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.FloatVector;

/**
 * f32 copies of strided views into a destination whose last dim has unit stride. Two shapes of problem:
 * <ul>
 *   <li>the source's innermost dim also has unit (or zero) stride after merging dims — a permutation that
 *       keeps the last dim, e.g. attention's [B,T,H,D] → [B,H,T,D]: vector row copies;</li>
 *   <li>the source's unit-stride dim is another one, p (a transpose): the (p, last) plane is copied in
 *       32×32 tiles so that both the strided reads and the unit-stride writes of one tile stay in L1.</li>
 * </ul>
 */
final class PermuteCopy {
  private PermuteCopy() {}

  private static final int T = 32;

  /** False when neither pattern applies (the caller falls back to the reference copy). */
  static boolean copy(CpuParallel par, Tensor src, Tensor dst) {
    Layout lay = Layout.of(dst.shape().toArray(), dst, src);
    if (lay != null && lay.innerStrides()[0] == 1) {
      MemorySegment sd = segment(dst), ss = segment(src);
      boolean vec = lay.innerStrides()[1] == 1;
      par.forRange(lay.rows(), Math.max(1, (1 << 15) / Math.max(1, lay.inner())), (r0, r1) -> {
        Layout.Cursor c = lay.new Cursor(r0);
        for (long r = r0; r < r1; r++, c.next()) row(ss, c.at[1], vec, sd, c.at[0], lay.rowLength(r));
      });
      return true;
    }
    return transposed(par, src, dst);
  }

  private static void row(MemorySegment s, long si, boolean vec, MemorySegment d, long di, int n) {
    if (!vec) {
      FloatVector v = FloatVector.broadcast(S, s.getAtIndex(F, si));
      for (int j = 0; j < n; j += L) RowOps.store(v, d, di, j, n);
      return;
    }
    MemorySegment.copy(s, si * 4, d, di * 4, n * 4L);
  }

  private static boolean transposed(CpuParallel par, Tensor src, Tensor dst) {
    int r = dst.rank(), last = r - 1;
    if (r < 2 || dst.stride(last) != 1) return false;
    int p = -1;
    for (int d = 0; d < last; d++) if (src.stride(d) == 1 && src.size(d) > 1) p = d;
    if (p < 0) return false;
    int np = dst.size(p), nl = dst.size(last);
    long spS = 1, slS = src.stride(last), spD = dst.stride(p);
    // every other dim is walked by index; planes × tiles-along-p are the parallel items
    int[] others = new int[r - 2];
    for (int d = 0, k = 0; d < last; d++) if (d != p) others[k++] = d;
    long planes = 1;
    for (int d : others) planes *= dst.size(d);
    int tilesP = (np + T - 1) / T;
    MemorySegment ss = segment(src), sd = segment(dst);
    long planesF = planes;
    par.forRange(planesF * tilesP, Math.max(1, 64 / Math.max(1, nl / T)), (i0, i1) -> {
      for (long it = i0; it < i1; it++) {
        long plane = it / tilesP;
        int pa = (int) (it % tilesP) * T, pb = Math.min(np, pa + T);
        long so = src.offset(), dOff = dst.offset(), rem = plane;
        for (int k = others.length - 1; k >= 0; k--) {
          int d = others[k];
          long idx = rem % dst.size(d);
          rem /= dst.size(d);
          so += idx * src.stride(d);
          dOff += idx * dst.stride(d);
        }
        for (int la = 0; la < nl; la += T) {
          int lb = Math.min(nl, la + T);
          for (int i = pa; i < pb; i++) {
            long sRow = so + i * spS, dRow = dOff + i * spD;
            for (int l = la; l < lb; l++) sd.setAtIndex(F, dRow + l, ss.getAtIndex(F, sRow + l * slS));
          }
        }
      }
    });
    return true;
  }
}
