package io.colossal4j.tensor;

import java.util.Arrays;

/** An immutable list of dimension sizes. A rank-0 shape is a scalar (one element). */
public final class Shape {
  private final int[] dims;

  private Shape(int[] dims) { this.dims = dims; }

  public static Shape of(int... dims) {
    for (int d : dims)
      if (d < 0) throw new TensorException("shape " + Arrays.toString(dims) + " has a negative size");
    return new Shape(dims.clone());
  }

  public static Shape scalar() { return new Shape(new int[0]); }

  public int rank() { return dims.length; }

  /** Size of dimension {@code d}; negative {@code d} counts from the end. */
  public int dim(int d) { return dims[axis(d)]; }

  public int[] toArray() { return dims.clone(); }

  public long numel() {
    long n = 1;
    for (int d : dims) n *= d;
    return n;
  }

  /** Normalises a possibly negative dimension index, naming the valid range if it is out of it. */
  public int axis(int d) {
    int r = dims.length;
    if (d < -Math.max(r, 1) || d >= Math.max(r, 1))
      throw new TensorException("dim " + d + " is out of range for shape " + this + " (valid: " + -Math.max(r, 1) + ".." + (Math.max(r, 1) - 1) + ")");
    return d < 0 ? d + r : d;
  }

  /** Row-major (contiguous) strides in elements. */
  public long[] contiguousStrides() {
    long[] s = new long[dims.length];
    long acc = 1;
    for (int i = dims.length - 1; i >= 0; i--) {
      s[i] = acc;
      acc *= dims[i];
    }
    return s;
  }

  public Shape with(int d, int size) {
    int[] copy = dims.clone();
    copy[axis(d)] = size;
    return new Shape(copy);
  }

  /** Product of the sizes in [from, to). */
  public long numel(int from, int to) {
    long n = 1;
    for (int i = from; i < to; i++) n *= dims[i];
    return n;
  }

  /** The broadcast of two shapes (numpy rules), or an error naming both. */
  public static Shape broadcast(String op, Shape a, Shape b) {
    int r = Math.max(a.rank(), b.rank());
    int[] out = new int[r];
    for (int i = 0; i < r; i++) {
      int da = i - (r - a.rank()) >= 0 ? a.dims[i - (r - a.rank())] : 1;
      int db = i - (r - b.rank()) >= 0 ? b.dims[i - (r - b.rank())] : 1;
      if (da != db && da != 1 && db != 1)
        throw new TensorException(op + ": shapes " + a + " and " + b + " do not broadcast (dim " + i + ": " + da + " vs " + db + ")");
      out[i] = da == 1 ? db : da;
    }
    return new Shape(out);
  }

  @Override public boolean equals(Object o) {
    return o instanceof Shape s && Arrays.equals(dims, s.dims);
  }

  @Override public int hashCode() { return Arrays.hashCode(dims); }

  @Override public String toString() { return Arrays.toString(dims); }
}
