package io.colossal4j.train.precision;

import io.colossal4j.autograd.Autocast;
import io.colossal4j.tensor.DType;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * How a training step uses reduced precision (the config's {@code train.precision}); parameters, their
 * gradients and the optimizer state stay in f32 in every case (the master weights).
 * <ul>
 *   <li>{@link Full}: everything in the parameters' dtype;</li>
 *   <li>{@link Autocast16}: the forward pass (and the backward rules it recorded) runs matrix ops in bf16
 *       ({@link io.colossal4j.autograd.Autocast}); bf16 has f32's exponent range, so gradients need no scaling;</li>
 *   <li>{@link Autocast16} with a {@link DynamicLossScaler}: the same in f16, whose range is narrow: the loss is
 *       scaled before backward and gradients unscaled (and checked) before the update; an overflow skips the
 *       update and is reported with its step.</li>
 * </ul>
 * The loss itself is computed outside autocast, in the dtype the model's output has.
 */
public sealed interface MixedPrecision {
  /** No autocast. */
  record Full() implements MixedPrecision {}

  /** Autocast to {@code dtype} (bf16 or f16); {@code scaler} is present exactly for f16. */
  record Autocast16(DType dtype, DynamicLossScaler scaler) implements MixedPrecision {
    public Autocast16 {
      if (dtype != DType.BF16 && dtype != DType.F16) throw new IllegalArgumentException("autocast computes in bf16 or f16, got " + dtype);
      if ((dtype == DType.F16) != (scaler != null))
        throw new IllegalArgumentException(dtype == DType.F16 ? "f16 autocast needs a loss scaler (its range is too narrow for raw gradients)"
            : "bf16 needs no loss scaler (it has f32's exponent range)");
    }
  }

  static MixedPrecision full() { return new Full(); }

  static MixedPrecision bf16() { return new Autocast16(DType.BF16, null); }

  /** f16 with PyTorch's scaler defaults; {@code onOverflow} receives every skipped update. */
  static MixedPrecision fp16(Consumer<DynamicLossScaler.Outcome.Skipped> onOverflow) {
    return new Autocast16(DType.F16, new DynamicLossScaler(DynamicLossScaler.Config.DEFAULTS, onOverflow));
  }

  /** Runs the forward part of a step under this policy. */
  default <T> T forward(Supplier<T> body) {
    return switch (this) {
      case Full f -> body.get();
      case Autocast16 a -> Autocast.call(a.dtype(), body);
    };
  }

  /** The loss scale now (1 when unscaled). */
  default double lossScale() {
    return this instanceof Autocast16(DType d, DynamicLossScaler s) && s != null ? s.scale() : 1;
  }
}
