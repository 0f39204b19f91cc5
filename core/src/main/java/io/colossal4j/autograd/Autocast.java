package io.colossal4j.autograd;

import io.colossal4j.tensor.DType;
import java.util.Optional;
import java.util.function.Supplier;

/**
 * Automatic mixed precision: inside {@link #run}, the matrix ops (matmul and linear, convolution, attention)
 * cast their floating operands to a 16-bit type and compute in it, while parameters stay in f32 (the master
 * weights: the casts are recorded, so gradients reach them in f32). Everything else (normalisation, softmax,
 * losses, the optimizer) runs in the dtype of its inputs, so reductions keep f32 where the graph has it.
 *
 * <p>Like {@link GradMode}, a {@link ScopedValue}: the region is lexical and cannot leak past its end. The
 * backward pass may run outside the region; it replays the dtypes the forward recorded.
 */
public final class Autocast {
  private Autocast() {}

  private static final ScopedValue<DType> DTYPE = ScopedValue.newInstance();

  /** The dtype matrix ops compute in here, if autocast is on. */
  public static Optional<DType> dtype() { return DTYPE.isBound() ? Optional.ofNullable(DTYPE.get()) : Optional.empty(); }

  public static <T> T call(DType dtype, Supplier<T> body) { return ScopedValue.where(DTYPE, check(dtype)).call(body::get); }

  public static void run(DType dtype, Runnable body) { ScopedValue.where(DTYPE, check(dtype)).run(body); }

  /** Turns autocast off inside an autocast region (for a part that must run in full precision). */
  public static <T> T disabled(Supplier<T> body) {
    return DTYPE.isBound() ? ScopedValue.where(DTYPE, (DType) null).call(body::get) : body.get();
  }

  /** The dtype a floating operand of {@code d} is cast to here, or {@code d} itself when autocast is off or d is not floating. */
  public static DType target(DType d) {
    if (!DTYPE.isBound() || DTYPE.get() == null || !d.isFloating() || d == DType.F64) return d;
    return DTYPE.get();
  }

  private static DType check(DType d) {
    if (d != DType.BF16 && d != DType.F16) throw new IllegalArgumentException("autocast computes in bf16 or f16, got " + d);
    return d;
  }
}
