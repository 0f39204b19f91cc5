package io.colossal4j.train.config;

/**
 * The learning-rate schedule, selected by {@code name}; the peak rate is {@code optimizer.lr} and the total
 * number of steps comes from the training length. Warm-up is linear over {@code warmup_steps}.
 */
public sealed interface ScheduleConfig {
  static ScheduleConfig defaults() { return Cosine.defaults(); }

  @ConfigName("constant")
  record Constant(long warmupSteps) implements ScheduleConfig {
    public Constant {
      ConfigException.atLeast("warmup_steps", warmupSteps, 0);
    }

    public static Constant defaults() { return new Constant(0); }
  }

  /** Warm-up from {@code start_factor}·lr to lr, then linear decay to 0 at the last step. */
  @ConfigName("linear")
  record Linear(long warmupSteps, double startFactor) implements ScheduleConfig {
    public Linear {
      ConfigException.atLeast("warmup_steps", warmupSteps, 0);
      ConfigException.inRange("start_factor", startFactor, 0, 1);
    }

    public static Linear defaults() { return new Linear(0, 0); }
  }

  /** Warm-up from {@code warmup_start_lr} to lr, then half a cosine down to {@code min_lr} at the last step. */
  @ConfigName("cosine")
  record Cosine(long warmupSteps, double minLr, double warmupStartLr) implements ScheduleConfig {
    public Cosine {
      ConfigException.atLeast("warmup_steps", warmupSteps, 0);
      ConfigException.atLeast("min_lr", minLr, 0.0);
      ConfigException.atLeast("warmup_start_lr", warmupStartLr, 0.0);
    }

    public static Cosine defaults() { return new Cosine(0, 0, 0); }
  }

  /** lr · gamma^floor(step / every). */
  @ConfigName("step")
  record StepDecay(long every, double gamma) implements ScheduleConfig {
    public StepDecay {
      ConfigException.atLeast("every", every, 1);
      ConfigException.inRange("gamma", gamma, 0, 1);
    }

    public static StepDecay defaults() { return new StepDecay(1000, 0.1); }
  }

  /** PyTorch's OneCycleLR (cosine): from lr/div_factor up to lr over pct_start of the steps, then down to lr/(div_factor·final_div_factor). */
  @ConfigName("one_cycle")
  record OneCycle(double pctStart, double divFactor, double finalDivFactor) implements ScheduleConfig {
    public OneCycle {
      if (!(pctStart > 0 && pctStart < 1)) throw ConfigException.invalid("pct_start", pctStart, "a number in (0, 1)");
      ConfigException.atLeast("div_factor", divFactor, 1.0);
      ConfigException.atLeast("final_div_factor", finalDivFactor, 1.0);
    }

    public static OneCycle defaults() { return new OneCycle(0.3, 25, 1e4); }
  }
}
