package io.colossal4j.backend.cuda;

import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.TensorException;
import java.lang.foreign.SegmentAllocator;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

/**
 * Launch geometry for the strided kernels: a shape with up to four operands' element strides and offsets,
 * with size-1 dims dropped and neighbouring dims merged wherever every operand allows it (a contiguous
 * tensor becomes rank 1), so the kernels' index arithmetic stays short. Serialises to the kernels'
 * {@code struct Geom} (336 bytes) and {@code struct RGeom} (296 bytes) layouts in common.cuh / reduce.cu.
 */
final class CudaGeometry {
  static final int MAX_RANK = 8;
  static final long GEOM_BYTES = 336;
  static final long RGEOM_BYTES = 296;

  /** A coalesced iteration space: sizes[d] and strides[op][d] (outermost first), plus per-operand offsets. */
  record Space(long numel, int[] sizes, long[][] strides, long[] offsets) {
    int rank() { return sizes.length; }
  }

  private CudaGeometry() {}

  /** Coalesces {@code shape} for operands with the given strides and offsets (one row per operand). */
  static Space coalesce(Shape shape, long[][] strides, long[] offsets) {
    int ops = strides.length;
    List<int[]> sizes = new ArrayList<>();
    List<long[]> st = new ArrayList<>();
    // walk from the innermost dim outwards, merging a dim into the current run when every operand steps evenly
    for (int d = shape.rank() - 1; d >= 0; d--) {
      int size = shape.dim(d);
      if (size == 1) continue;
      long[] s = new long[ops];
      for (int k = 0; k < ops; k++) s[k] = strides[k][d];
      if (!sizes.isEmpty()) {
        int last = sizes.size() - 1;
        int cur = sizes.get(last)[0];
        long[] cs = st.get(last);
        boolean merge = (long) cur * size <= Integer.MAX_VALUE;
        for (int k = 0; k < ops && merge; k++) merge = s[k] == cs[k] * cur;
        if (merge) {
          sizes.get(last)[0] = cur * size;
          continue;
        }
      }
      sizes.add(new int[] {size});
      st.add(s);
    }
    int r = sizes.size();
    int[] outSizes = new int[r];
    long[][] outStrides = new long[ops][r];
    for (int i = 0; i < r; i++) {
      outSizes[r - 1 - i] = sizes.get(i)[0];
      for (int k = 0; k < ops; k++) outStrides[k][r - 1 - i] = st.get(i)[k];
    }
    return new Space(shape.numel(), outSizes, outStrides, offsets.clone());
  }

  static void checkRank(Space s, String op) {
    if (s.rank() > MAX_RANK)
      throw new TensorException(op + " on CUDA: " + s.rank() + " dims remain after merging contiguous ones; at most " + MAX_RANK
          + " are supported (make the operand contiguous first)");
  }

  /** Writes {@code struct Geom} for s into a new segment of {@code arena}. */
  static MemorySegment geom(SegmentAllocator arena, Space s, String op) {
    checkRank(s, op);
    if (s.strides().length > 4) throw new IllegalArgumentException("at most 4 operands, got " + s.strides().length);
    MemorySegment g = arena.allocate(GEOM_BYTES, 8);
    g.set(ValueLayout.JAVA_LONG, 0, s.numel());
    g.set(ValueLayout.JAVA_INT, 8, s.rank());
    g.set(ValueLayout.JAVA_INT, 12, s.strides().length);
    for (int d = 0; d < s.rank(); d++) g.set(ValueLayout.JAVA_INT, 16 + 4L * d, s.sizes()[d]);
    for (int k = 0; k < s.strides().length; k++) {
      for (int d = 0; d < s.rank(); d++) g.set(ValueLayout.JAVA_LONG, 48 + 8L * (k * MAX_RANK + d), s.strides()[k][d]);
      g.set(ValueLayout.JAVA_LONG, 304 + 8L * k, s.offsets()[k]);
    }
    return g;
  }

  /**
   * Writes {@code struct RGeom}: {@code kept} is the coalesced space of the kept dims (operands x, out), {@code red}
   * that of the reduced dims (operand x).
   */
  static MemorySegment rgeom(SegmentAllocator arena, Space kept, Space red, long xOffset, long outOffset) {
    checkRank(kept, "reduce");
    checkRank(red, "reduce");
    MemorySegment g = arena.allocate(RGEOM_BYTES, 8);
    g.set(ValueLayout.JAVA_LONG, 0, kept.numel());
    g.set(ValueLayout.JAVA_LONG, 8, red.numel());
    g.set(ValueLayout.JAVA_INT, 16, kept.rank());
    g.set(ValueLayout.JAVA_INT, 20, red.rank());
    for (int d = 0; d < kept.rank(); d++) {
      g.set(ValueLayout.JAVA_INT, 24 + 4L * d, kept.sizes()[d]);
      g.set(ValueLayout.JAVA_LONG, 88 + 8L * d, kept.strides()[0][d]);
      g.set(ValueLayout.JAVA_LONG, 152 + 8L * d, kept.strides()[1][d]);
    }
    for (int d = 0; d < red.rank(); d++) {
      g.set(ValueLayout.JAVA_INT, 56 + 4L * d, red.sizes()[d]);
      g.set(ValueLayout.JAVA_LONG, 216 + 8L * d, red.strides()[0][d]);
    }
    g.set(ValueLayout.JAVA_LONG, 280, xOffset);
    g.set(ValueLayout.JAVA_LONG, 288, outOffset);
    return g;
  }
}
