package io.colossal4j.train.precision;

import io.colossal4j.backend.BinaryOp;
import io.colossal4j.ops.Arith;
import io.colossal4j.ops.Reduce;
import io.colossal4j.optim.Optimizer;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Tensor;
import java.util.Map;
import java.util.Objects;
import java.util.function.Consumer;

/**
 * Dynamic loss scaling for f16 training (Micikevicius et al., 2018; PyTorch's GradScaler rule): the loss is
 * multiplied by a scale before backward so small gradients survive f16; {@link #step} divides the gradients
 * by the scale, and either applies the optimizer or, when some gradient is infinite or NaN, skips the update,
 * halves the scale and reports the overflow to the listener given at construction: a skipped update is
 * never silent. After {@code growthInterval} overflow-free steps in a row the scale doubles.
 *
 * <p>Not thread-safe; one scaler per training loop.
 */
public final class DynamicLossScaler {
  /** The rule's constants; PyTorch's defaults are {@link #DEFAULTS}. */
  public record Config(double initialScale, double growthFactor, double backoffFactor, int growthInterval) {
    public static final Config DEFAULTS = new Config(65536, 2, 0.5, 2000);

    public Config {
      if (!(initialScale > 0) || Double.isInfinite(initialScale)) throw new IllegalArgumentException("initial loss scale must be finite and > 0, got " + initialScale);
      if (!(growthFactor > 1)) throw new IllegalArgumentException("growth factor must be > 1, got " + growthFactor);
      if (!(backoffFactor > 0 && backoffFactor < 1)) throw new IllegalArgumentException("backoff factor must be in (0, 1), got " + backoffFactor);
      if (growthInterval < 1) throw new IllegalArgumentException("growth interval must be >= 1, got " + growthInterval);
    }
  }

  /** What {@link #step} did. */
  public sealed interface Outcome {
    /** The optimizer stepped with gradients unscaled by {@code scale}. */
    record Applied(long step, double scale) implements Outcome {}

    /** The update was skipped: {@code parameter}'s gradient (the first in order) was not finite at {@code scale}. */
    record Skipped(long step, String parameter, double scale, double newScale) implements Outcome {
      public String describe() {
        return "step " + step + ": gradient of " + parameter + " overflowed at loss scale " + scale
            + "; the update was skipped and the scale lowered to " + newScale;
      }
    }
  }

  private final Config config;
  private final Consumer<Outcome.Skipped> onOverflow;
  private double scale;
  private int goodSteps;

  /** {@code onOverflow} receives every skipped update (log it, count it); it may not be null. */
  public DynamicLossScaler(Config config, Consumer<Outcome.Skipped> onOverflow) {
    this.config = Objects.requireNonNull(config, "config");
    this.onOverflow = Objects.requireNonNull(onOverflow, "an overflow listener is required: skipped updates must be reported");
    this.scale = config.initialScale();
  }

  public double scale() { return scale; }

  /** loss × scale, to call backward on. */
  public Tensor scale(Tensor loss) { return Arith.mulScalar(loss, scale); }

  /**
   * Unscales the gradients of {@code params} in place and applies {@code optimizer.step(lr)} if all are
   * finite; otherwise skips it and reports. Gradients are cleared either way (the caller's next backward
   * starts from zero). One host synchronisation per call (the finiteness check).
   */
  public Outcome step(Optimizer optimizer, double lr, Map<String, Tensor> params, long step) {
    Outcome outcome = unscale(params, step);
    if (outcome instanceof Outcome.Applied) optimizer.step(lr);
    optimizer.zeroGrad();
    return outcome;
  }

  /**
   * The first half of {@link #step}, for callers that act between unscaling and the update (gradient
   * clipping must see true gradients): divides the gradients of {@code params} by the scale in place, checks
   * that all are finite and updates the scale by the rule. {@link Outcome.Skipped} means the caller must not
   * apply this update (it has been reported to the listener already).
   */
  public Outcome unscale(Map<String, Tensor> params, long step) {
    double inv = 1 / scale;
    Tensor total = null;
    for (Tensor p : params.values()) {
      Tensor g = p.grad();
      if (g == null) continue;
      g.backend().kernels().binaryScalar(BinaryOp.MUL, g, inv, g);
      Tensor s = Reduce.sum(Arith.cast(g, DType.F32));  // inf and NaN survive a sum
      total = total == null ? s : Arith.add(total, s);
    }
    boolean finite = total == null || Double.isFinite(total.item());
    if (finite) {
      Outcome applied = new Outcome.Applied(step, scale);
      if (++goodSteps >= config.growthInterval()) {
        scale *= config.growthFactor();
        goodSteps = 0;
      }
      return applied;
    }
    double old = scale;
    scale *= config.backoffFactor();
    goodSteps = 0;
    Outcome.Skipped skipped = new Outcome.Skipped(step, firstNonFinite(params), old, scale);
    onOverflow.accept(skipped);
    return skipped;
  }

  /** The state a checkpoint keeps: the scale and the overflow-free steps since it last changed. */
  public record State(double scale, int goodSteps) {
    public State {
      if (!(scale > 0) || Double.isInfinite(scale)) throw new IllegalArgumentException("loss scale must be finite and > 0, got " + scale);
      if (goodSteps < 0) throw new IllegalArgumentException("good steps must be >= 0, got " + goodSteps);
    }
  }

  public State state() { return new State(scale, goodSteps); }

  /** Continues from a checkpointed state (a resumed run scales exactly as the original would have). */
  public void restore(State s) {
    scale = s.scale();
    goodSteps = s.goodSteps();
  }

  private static String firstNonFinite(Map<String, Tensor> params) {
    for (var e : params.entrySet()) {
      Tensor g = e.getValue().grad();
      if (g != null && !Double.isFinite(Reduce.sum(Arith.cast(g, DType.F32)).item())) return e.getKey();
    }
    return "(none found on the second look)";
  }
}
