package io.colossal4j.backend.cpu.simd;

import io.colossal4j.tensor.Tensor;
import java.util.Arrays;

/**
 * The iteration space of an elementwise kernel: a shape shared by up to three operands, each with its own
 * element strides and offset, simplified so that vector loops see long unit-stride rows. Size-1 dims are
 * dropped and adjacent dims merged wherever every operand allows it (stride[d] = stride[d+1]·size[d+1]), so
 * a contiguous tensor becomes one row, and [B, T, C] + [C] becomes rows of C with the bias at stride 0 across
 * rows. A fully merged 1-D space is cut into pseudo-rows so that it can still be split over threads.
 * Immutable; {@link Cursor} walks the rows of one thread's range.
 */
record Layout(int[] outer, long[][] outerStrides, long[] offsets, long[] innerStrides, int inner, int lastRow, long rows) {
  static final int SPLIT = 1 << 14;

  /** Null when some operand's innermost stride is neither 0 nor 1 (the caller then takes the general path). */
  static Layout of(int[] shape, Tensor... ts) {
    int k = ts.length;
    long[][] st = new long[k][];
    for (int i = 0; i < k; i++) st[i] = ts[i].strides();
    int[] dims = new int[Math.max(1, shape.length)];
    long[][] ms = new long[k][Math.max(1, shape.length)];
    int r = 0;
    for (int d = 0; d < shape.length; d++) {
      if (shape[d] == 1) continue;
      boolean merge = r > 0;
      for (int i = 0; i < k && merge; i++) merge = ms[i][r - 1] == st[i][d] * shape[d];
      if (merge) {
        dims[r - 1] *= shape[d];
        for (int i = 0; i < k; i++) ms[i][r - 1] = st[i][d];
      } else {
        dims[r] = shape[d];
        for (int i = 0; i < k; i++) ms[i][r] = st[i][d];
        r++;
      }
    }
    long[] off = new long[k];
    for (int i = 0; i < k; i++) off[i] = ts[i].offset();
    if (r == 0) { dims[0] = 1; r = 1; for (int i = 0; i < k; i++) ms[i][0] = 1; }
    long[] inS = new long[k];
    for (int i = 0; i < k; i++) {
      inS[i] = ms[i][r - 1];
      if (dims[r - 1] > 1 && inS[i] != 0 && inS[i] != 1) return null;
      if (dims[r - 1] == 1) inS[i] = 1;
    }
    int inner = dims[r - 1];
    int[] outer = Arrays.copyOf(dims, r - 1);
    long[][] os = new long[k][];
    for (int i = 0; i < k; i++) os[i] = Arrays.copyOf(ms[i], r - 1);
    long rows = 1;
    for (int d : outer) rows *= d;
    if (rows == 1 && inner > 2 * SPLIT) {        // one long row: cut it into pseudo-rows of SPLIT elements
      for (long s : inS) if (s == 0) return new Layout(outer, os, off, inS, inner, inner, rows);
      int pieces = (inner + SPLIT - 1) / SPLIT;
      return new Layout(new int[] {pieces}, splitStrides(k), off, inS, SPLIT, inner - (pieces - 1) * SPLIT, pieces);
    }
    return new Layout(outer, os, off, inS, inner, inner, rows);
  }

  private static long[][] splitStrides(int k) {
    long[][] s = new long[k][];
    for (int i = 0; i < k; i++) s[i] = new long[] {SPLIT};
    return s;
  }

  /** Element count of a row: {@code inner}, except for the short last piece of a cut 1-D space. */
  int rowLength(long row) { return row == rows - 1 ? lastRow : inner; }

  /** Walks rows [start, end) in order, keeping each operand's row offset. Not thread-safe; one per task. */
  final class Cursor {
    final long[] at;
    private final int[] idx;

    Cursor(long start) {
      int k = offsets.length;
      at = offsets.clone();
      idx = new int[outer.length];
      long rem = start;
      for (int d = outer.length - 1; d >= 0; d--) {
        idx[d] = (int) (rem % outer[d]);
        rem /= outer[d];
        for (int i = 0; i < k; i++) at[i] += idx[d] * outerStrides[i][d];
      }
    }

    void next() {
      for (int d = outer.length - 1; d >= 0; d--) {
        idx[d]++;
        for (int i = 0; i < at.length; i++) at[i] += outerStrides[i][d];
        if (idx[d] < outer[d]) return;
        for (int i = 0; i < at.length; i++) at[i] -= outerStrides[i][d] * outer[d];
        idx[d] = 0;
      }
    }
  }
}
