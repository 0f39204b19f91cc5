package io.colossal4j.ops;

import static io.colossal4j.ops.OpSupport.emptyLike;

import io.colossal4j.autograd.Autograd;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Shape and layout ops. Views share storage with their input (no copy) where the strides allow;
 * {@link #reshape} copies only when the input is not contiguous. All are differentiable.
 */
public final class Views {
  private Views() {}

  /** Reshape; one size may be -1 (inferred). */
  public static Tensor reshape(Tensor x, int... sizes) {
    Shape target = inferShape("reshape", x, sizes);
    Tensor src = x.isContiguous() ? x : contiguous(x);
    Tensor out = src.view(target, target.contiguousStrides(), src.offset());
    Shape in = x.shape();
    return Autograd.recordSaving("reshape", out, Autograd.NOTHING, g -> new Tensor[] {reshape(g, in.toArray())}, src == x ? x : src);
  }

  private static Shape inferShape(String op, Tensor x, int[] sizes) {
    int infer = -1;
    long known = 1;
    for (int i = 0; i < sizes.length; i++) {
      if (sizes[i] == -1) {
        if (infer >= 0) throw new TensorException(op + ": only one size may be -1, got " + Arrays.toString(sizes));
        infer = i;
      } else if (sizes[i] < 0) {
        throw new TensorException(op + ": invalid size " + sizes[i] + " in " + Arrays.toString(sizes));
      } else {
        known *= sizes[i];
      }
    }
    int[] out = sizes.clone();
    if (infer >= 0) {
      if (known == 0 || x.numel() % known != 0)
        throw new TensorException(op + ": cannot infer -1 in " + Arrays.toString(sizes) + " for " + x.numel() + " elements (shape " + x.shape() + ")");
      out[infer] = (int) (x.numel() / known);
    } else if (known != x.numel()) {
      throw new TensorException(op + ": shape " + Arrays.toString(sizes) + " has " + known + " elements, input " + x.shape() + " has " + x.numel());
    }
    return Shape.of(out);
  }

  /** Flattens dims [start, end] into one. */
  public static Tensor flatten(Tensor x, int start, int end) {
    int s = x.shape().axis(start), e = x.shape().axis(end);
    if (x.rank() == 0) return reshape(x, 1);
    int[] dims = x.shape().toArray();
    int[] out = new int[dims.length - (e - s)];
    int j = 0;
    for (int i = 0; i < s; i++) out[j++] = dims[i];
    out[j++] = (int) x.shape().numel(s, e + 1);
    for (int i = e + 1; i < dims.length; i++) out[j++] = dims[i];
    return reshape(x, out);
  }

  public static Tensor contiguous(Tensor x) {
    if (x.isContiguous()) return x;
    Tensor out = emptyLike(x);
    x.backend().kernels().copy(x, out);
    return Autograd.recordSaving("contiguous", out, Autograd.NOTHING, g -> new Tensor[] {g}, x);
  }

  public static Tensor permute(Tensor x, int... order) {
    int r = x.rank();
    if (order.length != r) throw new TensorException("permute: " + order.length + " dims given for a tensor of rank " + r + " (shape " + x.shape() + ")");
    int[] dims = new int[r], inverse = new int[r];
    long[] strides = new long[r];
    boolean[] used = new boolean[r];
    for (int i = 0; i < r; i++) {
      int d = x.shape().axis(order[i]);
      if (used[d]) throw new TensorException("permute: dim " + d + " repeated in " + Arrays.toString(order));
      used[d] = true;
      dims[i] = x.size(d);
      strides[i] = x.stride(d);
      inverse[d] = i;
    }
    Tensor out = x.view(Shape.of(dims), strides, x.offset());
    return Autograd.recordSaving("permute", out, Autograd.NOTHING, g -> new Tensor[] {permute(g, inverse)}, x);
  }

  public static Tensor transpose(Tensor x, int d0, int d1) {
    int a = x.shape().axis(d0), b = x.shape().axis(d1);
    int[] order = new int[x.rank()];
    for (int i = 0; i < order.length; i++) order[i] = i;
    order[a] = b;
    order[b] = a;
    return permute(x, order);
  }

  /** Elements [start, start+length) of {@code dim}, as a view. */
  public static Tensor narrow(Tensor x, int dim, int start, int length) {
    int d = x.shape().axis(dim);
    if (start < 0 || length < 0 || start + length > x.size(d))
      throw new TensorException("narrow: range [" + start + ", " + (start + length) + ") is outside dim " + d + " of size " + x.size(d) + " (shape " + x.shape() + ")");
    Tensor out = x.view(x.shape().with(d, length), x.strides(), x.offset() + start * x.stride(d));
    Shape in = x.shape();
    return Autograd.recordSaving("narrow", out, Autograd.NOTHING, g -> {
      Tensor gx = Tensor.zeros(in, g.dtype(), g.backend());
      Tensor slot = gx.view(in.with(d, length), gx.strides(), start * gx.stride(d));
      g.backend().kernels().copy(g, slot);
      return new Tensor[] {gx};
    }, x);
  }

  /** Index {@code index} of {@code dim}, removing that dim. */
  public static Tensor select(Tensor x, int dim, int index) {
    int d = x.shape().axis(dim);
    int i = index < 0 ? index + x.size(d) : index;
    return squeeze(narrow(x, d, i, 1), d);
  }

  public static Tensor unsqueeze(Tensor x, int dim) {
    int r = x.rank();
    int d = dim < 0 ? dim + r + 1 : dim;
    if (d < 0 || d > r) throw new TensorException("unsqueeze: dim " + dim + " out of range for rank " + r + " (valid: " + (-r - 1) + ".." + r + ")");
    int[] dims = new int[r + 1];
    long[] st = new long[r + 1];
    for (int i = 0, j = 0; i <= r; i++) {
      if (i == d) { dims[i] = 1; st[i] = i < r ? x.stride(i) * x.size(i) : 1; continue; }
      dims[i] = x.size(j);
      st[i] = x.stride(j);
      j++;
    }
    Tensor out = x.view(Shape.of(dims), st, x.offset());
    Shape in = x.shape();
    return Autograd.recordSaving("unsqueeze", out, Autograd.NOTHING, g -> new Tensor[] {reshape(g, in.toArray())}, x);
  }

  /** Removes {@code dim}, which must have size 1. */
  public static Tensor squeeze(Tensor x, int dim) {
    int d = x.shape().axis(dim);
    if (x.size(d) != 1) throw new TensorException("squeeze: dim " + d + " has size " + x.size(d) + ", not 1 (shape " + x.shape() + ")");
    int[] dims = new int[x.rank() - 1];
    long[] st = new long[x.rank() - 1];
    for (int i = 0, j = 0; i < x.rank(); i++) {
      if (i == d) continue;
      dims[j] = x.size(i);
      st[j++] = x.stride(i);
    }
    Tensor out = x.view(Shape.of(dims), st, x.offset());
    Shape in = x.shape();
    return Autograd.recordSaving("squeeze", out, Autograd.NOTHING, g -> new Tensor[] {reshape(g, in.toArray())}, x);
  }

  /** Broadcasts x to {@code sizes} without copying (-1 keeps a size). */
  public static Tensor expand(Tensor x, int... sizes) {
    int[] target = sizes.clone();
    int off = target.length - x.rank();
    if (off < 0) throw new TensorException("expand: " + target.length + " sizes for a tensor of rank " + x.rank());
    for (int i = 0; i < target.length; i++) if (target[i] == -1 && i >= off) target[i] = x.size(i - off);
    Shape shape = Shape.of(target);
    Tensor out = OpSupport.broadcastView(x, shape);
    Shape in = x.shape();
    return Autograd.recordSaving("expand", out, Autograd.NOTHING, g -> new Tensor[] {OpSupport.sumToShape(g, in)}, x);
  }

  /** Concatenates along {@code dim}; all other sizes must agree. */
  public static Tensor cat(int dim, List<Tensor> xs) {
    if (xs.isEmpty()) throw new TensorException("cat: no tensors given");
    Tensor first = xs.get(0);
    int d = first.shape().axis(dim);
    int total = 0;
    for (Tensor t : xs) {
      if (t.rank() != first.rank()) throw new TensorException("cat: ranks differ: " + first.shape() + " and " + t.shape());
      for (int i = 0; i < t.rank(); i++)
        if (i != d && t.size(i) != first.size(i))
          throw new TensorException("cat along dim " + d + ": shapes " + first.shape() + " and " + t.shape() + " differ in dim " + i);
      OpSupport.sameBackend("cat", first, t);
      total += t.size(d);
    }
    Tensor out = Tensor.empty(first.shape().with(d, total), first.dtype(), first.backend());
    int[] starts = new int[xs.size()];
    int pos = 0;
    for (int k = 0; k < xs.size(); k++) {
      Tensor t = xs.get(k);
      starts[k] = pos;
      Tensor slot = out.view(t.shape(), out.strides(), pos * out.stride(d));
      first.backend().kernels().copy(t, slot);
      pos += t.size(d);
    }
    return Autograd.recordSaving("cat", out, Autograd.NOTHING, g -> {
      Tensor[] gs = new Tensor[xs.size()];
      for (int k = 0; k < gs.length; k++) gs[k] = contiguous(narrow(g, d, starts[k], xs.get(k).size(d)));
      return gs;
    }, xs.toArray(Tensor[]::new));
  }

  public static Tensor cat(int dim, Tensor... xs) { return cat(dim, List.of(xs)); }

  /** Stacks along a new dim. */
  public static Tensor stack(int dim, List<Tensor> xs) {
    List<Tensor> u = new ArrayList<>(xs.size());
    for (Tensor t : xs) u.add(unsqueeze(t, dim));
    return cat(dim, u);
  }

  /** Pieces of {@code size} along dim (the last may be smaller), as views. */
  public static List<Tensor> split(Tensor x, int size, int dim) {
    if (size < 1) throw new TensorException("split: size must be >= 1, got " + size);
    int d = x.shape().axis(dim);
    List<Tensor> out = new ArrayList<>();
    for (int s = 0; s < x.size(d); s += size) out.add(narrow(x, d, s, Math.min(size, x.size(d) - s)));
    return out;
  }

  /** {@code chunks} pieces along dim (sizes as torch.chunk: ceil(n/chunks) each, the last smaller). */
  public static List<Tensor> chunk(Tensor x, int chunks, int dim) {
    if (chunks < 1) throw new TensorException("chunk: chunks must be >= 1, got " + chunks);
    int n = x.size(dim);
    return split(x, Math.max(1, Math.ceilDiv(n, chunks)), dim);
  }
}
