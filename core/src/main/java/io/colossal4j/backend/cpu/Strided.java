package io.colossal4j.backend.cpu;

import io.colossal4j.tensor.Shape;

/**
 * Walks every element of a shape in row-major order, yielding element offsets into up to three operands
 * with their own strides (0 for broadcast dims). The slow, general loop the scalar kernels are built on.
 */
public final class Strided {
  private Strided() {}

  @FunctionalInterface public interface Body1 { void at(long a); }

  @FunctionalInterface public interface Body2 { void at(long a, long b); }

  @FunctionalInterface public interface Body3 { void at(long a, long b, long c); }

  public static void forEach(Shape shape, long[] sa, long a0, Body1 f) {
    forEach(shape, sa, a0, sa, a0, sa, a0, (a, b, c) -> f.at(a));
  }

  public static void forEach(Shape shape, long[] sa, long a0, long[] sb, long b0, Body2 f) {
    forEach(shape, sa, a0, sb, b0, sa, a0, (a, b, c) -> f.at(a, b));
  }

  public static void forEach(Shape shape, long[] sa, long a0, long[] sb, long b0, long[] sc, long c0, Body3 f) {
    int r = shape.rank();
    long n = shape.numel();
    if (n == 0) return;
    if (r == 0) { f.at(a0, b0, c0); return; }
    int[] dims = shape.toArray();
    int[] idx = new int[r];
    long a = a0, b = b0, c = c0;
    int last = r - 1;
    int inner = dims[last];
    long ia = sa[last], ib = sb[last], ic = sc[last];
    for (long done = 0; done < n; done += inner) {
      long pa = a, pb = b, pc = c;
      for (int j = 0; j < inner; j++) {
        f.at(pa, pb, pc);
        pa += ia; pb += ib; pc += ic;
      }
      // advance the outer index (odometer over dims 0..r-2)
      for (int d = last - 1; d >= 0; d--) {
        idx[d]++;
        a += sa[d]; b += sb[d]; c += sc[d];
        if (idx[d] < dims[d]) break;
        a -= sa[d] * dims[d]; b -= sb[d] * dims[d]; c -= sc[d] * dims[d];
        idx[d] = 0;
      }
    }
  }
}
