package io.colossal4j.tensor;

import io.colossal4j.backend.Backend;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Consumer;

/**
 * An n-dimensional view (shape, element strides, element offset, dtype) into a {@link Storage}.
 * This class holds data and autograd bookkeeping only; the math lives in {@code ops} (static functions,
 * so the dependency direction stays tensor ← autograd ← ops).
 *
 * <p>Autograd state: a tensor either is a leaf ({@code gradFn == null}), whose gradient accumulates into
 * {@link #grad()}, or was produced by an op recorded as its {@link #gradFn()}.
 * Not thread-safe: a tensor belongs to the thread that computes with it.
 */
public final class Tensor {
  private final Storage storage;
  private final Shape shape;
  private final long[] strides;
  private final long offset;
  private final DType dtype;

  private boolean requiresGrad;
  private Tensor grad;
  private boolean gradZeroPending;
  /** Whether an op claimed the lazily zeroed gradient to overwrite it ({@link #claimGradForOverwrite}). */
  private boolean gradClaimed;
  private boolean gradOwned;
  private boolean freshGradient;
  private GradFn gradFn;
  private List<Consumer<Tensor>> gradReadyHooks;
  private String name;

  private Tensor(Storage storage, Shape shape, long[] strides, long offset, DType dtype) {
    this.storage = storage;
    this.shape = shape;
    this.strides = strides;
    this.offset = offset;
    this.dtype = dtype;
  }

  // ---------------------------------------------------------------- creation

  /** Uninitialised contiguous tensor on {@code backend}. */
  public static Tensor empty(Shape shape, DType dtype, Backend backend) {
    return empty(shape, dtype, backend, MemoryCategory.ACTIVATION);
  }

  public static Tensor empty(Shape shape, DType dtype, Backend backend, MemoryCategory category) {
    Storage s = backend.allocate(Math.max(1, shape.numel()) * dtype.byteSize(), category);
    return new Tensor(s, shape, shape.contiguousStrides(), 0, dtype);
  }

  public static Tensor zeros(Shape shape, DType dtype, Backend backend) {
    return full(shape, dtype, backend, 0.0);
  }

  public static Tensor full(Shape shape, DType dtype, Backend backend, double value) {
    Tensor t = empty(shape, dtype, backend);
    backend.kernels().fill(t, value);
    return t;
  }

  /**
   * A contiguous tensor over memory allocated elsewhere (a storage its maker owns, such as a process group's
   * shared buffer), from the storage's start; rejects a storage too small for the shape.
   */
  public static Tensor onStorage(Storage storage, Shape shape, DType dtype) {
    if (shape.numel() * dtype.byteSize() > storage.byteSize())
      throw new TensorException("shape " + shape + " " + dtype + " needs " + shape.numel() * dtype.byteSize()
          + " bytes; the storage has " + storage.byteSize());
    return new Tensor(storage, shape, shape.contiguousStrides(), 0, dtype);
  }

  public static Tensor scalar(double value, DType dtype, Backend backend) {
    return full(Shape.scalar(), dtype, backend, value);
  }

  /** Copies {@code data} (row-major, converted to {@code dtype}) into a new tensor. */
  public static Tensor of(double[] data, Shape shape, DType dtype, Backend backend) {
    return of(data, shape, dtype, backend, MemoryCategory.ACTIVATION);
  }

  /** As {@link #of(double[], Shape, DType, Backend)}, charged to {@code category} (parameters, buffers). */
  public static Tensor of(double[] data, Shape shape, DType dtype, Backend backend, MemoryCategory category) {
    checkLength(data.length, shape);
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment host = arena.allocate(Math.max(1, data.length) * (long) dtype.byteSize(), 8);
      for (int i = 0; i < data.length; i++) Elements.set(host, dtype, (long) i * dtype.byteSize(), data[i]);
      Tensor t = empty(shape, dtype, backend, category);
      backend.copyFromHost(host, t);
      return t;
    }
  }

  public static Tensor of(float[] data, Shape shape, Backend backend) {
    checkLength(data.length, shape);
    Tensor t = empty(shape, DType.F32, backend);
    backend.copyFromHost(MemorySegment.ofArray(data), t);
    return t;
  }

  public static Tensor of(long[] data, Shape shape, DType dtype, Backend backend) {
    checkLength(data.length, shape);
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment host = arena.allocate(Math.max(1, data.length) * (long) dtype.byteSize(), 8);
      for (int i = 0; i < data.length; i++) Elements.setLong(host, dtype, (long) i * dtype.byteSize(), data[i]);
      Tensor t = empty(shape, dtype, backend);
      backend.copyFromHost(host, t);
      return t;
    }
  }

  private static void checkLength(int length, Shape shape) {
    if (length != shape.numel())
      throw new TensorException("data has " + length + " elements but shape " + shape + " needs " + shape.numel());
  }

  /**
   * A view of the same storage with another geometry. No autograd: ops wrap this. Bounds are checked
   * so that no view can reach outside its storage.
   */
  public Tensor view(Shape newShape, long[] newStrides, long newOffset) {
    if (newStrides.length != newShape.rank())
      throw new TensorException("view: " + newStrides.length + " strides for shape " + newShape);
    long lo = newOffset, hi = newOffset;
    for (int i = 0; i < newShape.rank(); i++) {
      if (newShape.dim(i) == 0) { lo = hi = newOffset; break; }
      long span = (long) (newShape.dim(i) - 1) * newStrides[i];
      if (span < 0) lo += span; else hi += span;
    }
    if (newShape.numel() > 0 && (lo < 0 || (hi + 1) * dtype.byteSize() > storage.byteSize()))
      throw new TensorException("view " + newShape + " strides " + Arrays.toString(newStrides) + " offset " + newOffset
          + " reaches outside its storage of " + storage.byteSize() / dtype.byteSize() + " elements");
    return new Tensor(storage, newShape, newStrides.clone(), newOffset, dtype);
  }

  /** A view with another dtype of the same width (bit reinterpretation), used by collectives and IO. */
  public Tensor reinterpret(DType other) {
    if (other.byteSize() != dtype.byteSize())
      throw new TensorException("reinterpret " + dtype + " as " + other + ": widths differ");
    return new Tensor(storage, shape, strides, offset, other);
  }

  // ---------------------------------------------------------------- geometry

  public Storage storage() { return storage; }

  public Backend backend() { return storage.backend(); }

  public Device device() { return storage.device(); }

  public Shape shape() { return shape; }

  public int rank() { return shape.rank(); }

  public int size(int dim) { return shape.dim(dim); }

  public long numel() { return shape.numel(); }

  public DType dtype() { return dtype; }

  /** Element strides (a copy). */
  public long[] strides() { return strides.clone(); }

  public long stride(int dim) { return strides[shape.axis(dim)]; }

  /** Offset of the first element, in elements from the start of the storage. */
  public long offset() { return offset; }

  public boolean isContiguous() {
    long expected = 1;
    for (int i = shape.rank() - 1; i >= 0; i--) {
      if (shape.dim(i) != 1 && strides[i] != expected) return false;
      expected *= shape.dim(i);
    }
    return true;
  }

  // ---------------------------------------------------------------- autograd state

  public boolean requiresGrad() { return requiresGrad; }

  /** Marks a leaf as a variable whose gradient accumulates into {@link #grad()}. */
  public Tensor requiresGrad(boolean value) {
    if (gradFn != null && !value)
      throw new TensorException("requiresGrad(false) on a non-leaf tensor (made by " + gradFn.name() + "); use detach()");
    this.requiresGrad = value;
    return this;
  }

  /**
   * The accumulated gradient, or null. A gradient zeroed lazily ({@link #zeroGradLazily}) and not written
   * since is zero-filled here, on first read, so every reader sees zeros.
   */
  public Tensor grad() {
    if (gradZeroPending) {
      gradZeroPending = false;
      grad.backend().kernels().fill(grad, 0);
    }
    return grad;
  }

  /** Whether a gradient is installed, without the lazy zero fill that {@link #grad()} performs. */
  public boolean hasGrad() { return grad != null; }

  /**
   * Marks this tensor as a gradient an op computed for exactly one leaf and nothing else refers to: autograd may
   * then install it as that leaf's gradient instead of copying it (as PyTorch's AccumulateGrad steals a gradient
   * nobody else holds), or release it once added. Returns this tensor.
   */
  public Tensor markFreshGradient() {
    freshGradient = true;
    return this;
  }

  /** Whether this tensor is {@link #markFreshGradient marked} (the mark stays; autograd takes it). */
  public boolean isFreshGradient() { return freshGradient; }

  /** For autograd: whether this tensor was {@link #markFreshGradient marked}, clearing the mark. */
  public boolean takeFreshGradient() {
    boolean f = freshGradient;
    freshGradient = false;
    return f;
  }

  public void setGrad(Tensor g) {
    if (g != null && !g.shape.equals(shape))
      throw new TensorException("grad of shape " + g.shape + " set on a tensor of shape " + shape);
    this.grad = g;
    this.gradZeroPending = false;
    this.gradClaimed = false;
    this.gradOwned = false;
  }

  /**
   * Sets a gradient whose storage this tensor owns alone (autograd allocated it for this leaf), so that
   * {@link #releaseGrad} may give its memory back.
   */
  public void setOwnedGrad(Tensor g) {
    setGrad(g);
    this.gradOwned = g != null;
  }

  /**
   * PyTorch's {@code zero_grad(set_to_none=True)} for one tensor: a gradient this tensor owns ({@link #setOwnedGrad})
   * is released now (its memory goes back to the allocator) and the gradient becomes null, so no gradient memory
   * is held between steps (in particular not during the next forward pass); the next backward allocates it again.
   * A gradient installed with {@link #setGrad} (a view of a shared buffer, e.g. data parallelism's buckets) is
   * its owner's memory: it is zeroed lazily instead ({@link #zeroGradLazily}). A reference to the released
   * gradient kept by a caller fails on use.
   */
  public void releaseGrad() {
    if (grad == null) return;
    if (!gradOwned) {
      zeroGradLazily();
      return;
    }
    Tensor g = grad;
    grad = null;
    gradZeroPending = false;
    gradOwned = false;
    g.storage().release();
  }

  /**
   * Makes the gradient logically zero without writing it: the next backward's first contribution overwrites
   * it (one pass over the gradient instead of a fill and an add), and a read before that sees zeros. The
   * buffer itself is kept (data parallelism's buckets are views of one flat buffer). No-op without a gradient.
   */
  public void zeroGradLazily() {
    gradZeroPending = grad != null;
    gradClaimed = false;
  }

  /**
   * For autograd, before accumulating into {@link #grad()}: whether the gradient is pending a lazy zero, in
   * which case the caller must overwrite it rather than add to it. Clears the pending state either way.
   */
  /**
   * For ops (through {@code OpSupport.gradientFor}): this leaf's gradient buffer itself, for the op to overwrite
   * with the backward pass's first contribution, when the buffer is logically zero (zeroed lazily and not written
   * since: the CPU's kept buffers and data parallelism's bucket views between steps), contiguous and of {@code dtype}
   * (the op's output dtype); null otherwise.
   * Claims it: the pending zero is cleared, and autograd takes the op's result, handed back as this leaf's gradient,
   * as already accumulated ({@link #takeClaimedGrad}). The op must write all of it.
   */
  public Tensor claimGradForOverwrite(DType dtype) {
    if (!gradZeroPending || grad == null || grad.dtype != dtype || !grad.isContiguous()) return null;
    gradZeroPending = false;
    gradClaimed = true;
    return grad;
  }

  /** For autograd: whether {@code g} is the gradient buffer an op claimed and overwrote; clears the claim. */
  public boolean takeClaimedGrad(Tensor g) {
    if (!gradClaimed || g != grad) return false;
    gradClaimed = false;
    return true;
  }

  public boolean claimZeroedGrad() {
    boolean pending = gradZeroPending;
    gradZeroPending = false;
    return pending;
  }

  public GradFn gradFn() { return gradFn; }

  /** Called by autograd when an op records this tensor as its output. */
  public void attachGradFn(GradFn fn) {
    this.gradFn = fn;
    this.requiresGrad = true;
  }

  public boolean isLeaf() { return gradFn == null; }

  /**
   * Registers a hook that runs once per backward pass when this leaf's gradient for that pass is complete
   * (all contributions accumulated). Data parallelism and ZeRO start their communication here.
   */
  public void addGradReadyHook(Consumer<Tensor> hook) {
    if (gradReadyHooks == null) gradReadyHooks = new ArrayList<>();
    gradReadyHooks.add(hook);
  }

  public List<Consumer<Tensor>> gradReadyHooks() {
    return gradReadyHooks == null ? List.of() : gradReadyHooks;
  }

  /** A new leaf sharing this storage, cut from the graph. */
  public Tensor detach() { return new Tensor(storage, shape, strides, offset, dtype); }

  public String name() { return name; }

  public Tensor named(String n) {
    this.name = n;
    return this;
  }

  // ---------------------------------------------------------------- reading back

  /** The elements in row-major order, converted to double (copies from the device if needed). */
  public double[] toDoubleArray() {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment host = hostCopy(arena);
      double[] out = new double[Math.toIntExact(numel())];
      for (int i = 0; i < out.length; i++) out[i] = Elements.get(host, dtype, (long) i * dtype.byteSize());
      return out;
    }
  }

  public float[] toFloatArray() {
    double[] d = toDoubleArray();
    float[] f = new float[d.length];
    for (int i = 0; i < d.length; i++) f[i] = (float) d[i];
    return f;
  }

  public long[] toLongArray() {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment host = hostCopy(arena);
      long[] out = new long[Math.toIntExact(numel())];
      for (int i = 0; i < out.length; i++) out[i] = Elements.getLong(host, dtype, (long) i * dtype.byteSize());
      return out;
    }
  }

  /** The single element of a one-element tensor. */
  public double item() {
    if (numel() != 1) throw new TensorException("item() needs one element, tensor has shape " + shape);
    return toDoubleArray()[0];
  }

  private MemorySegment hostCopy(Arena arena) {
    MemorySegment host = arena.allocate(Math.max(1, numel()) * dtype.byteSize(), 8);
    backend().copyToHost(this, host);
    return host;
  }

  @Override public String toString() {
    StringBuilder sb = new StringBuilder("Tensor").append(shape).append(' ').append(dtype.name().toLowerCase());
    if (!device().equals(Device.cpu())) sb.append(' ').append(device());
    if (gradFn != null) sb.append(" grad_fn=").append(gradFn.name());
    else if (requiresGrad) sb.append(" requires_grad");
    if (numel() <= 16 && !storage.isReleased()) sb.append(' ').append(Arrays.toString(toDoubleArray()));
    return sb.toString();
  }
}
