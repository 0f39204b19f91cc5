package io.colossal4j.train.config;

import java.util.List;

/**
 * The optimizer, selected by {@code name}. Every variant has a learning rate (the peak of the schedule), a weight
 * decay, and {@code decay_norms_and_biases} (false: parameters of norm layers and biases get no weight decay, the
 * usual practice). {@code betas} is [beta1, beta2].
 */
public sealed interface OptimizerConfig {
  double lr();

  double weightDecay();

  boolean decayNormsAndBiases();

  static OptimizerConfig defaults() { return AdamW.defaults(); }

  @ConfigName("sgd")
  record Sgd(double lr, double momentum, double dampening, boolean nesterov, double weightDecay, boolean decayNormsAndBiases)
      implements OptimizerConfig {
    public Sgd {
      ConfigException.positive("lr", lr);
      ConfigException.inRange("momentum", momentum, 0, 1);
      ConfigException.inRange("dampening", dampening, 0, 1);
      ConfigException.atLeast("weight_decay", weightDecay, 0.0);
      if (nesterov && (momentum == 0 || dampening != 0))
        throw new ConfigException("nesterov", "nesterov needs momentum > 0 and dampening 0, got momentum " + momentum + " dampening " + dampening);
    }

    public static Sgd defaults() { return new Sgd(0.1, 0.9, 0, false, 5e-4, false); }
  }

  @ConfigName("adam")
  record Adam(double lr, List<Double> betas, double eps, double weightDecay, boolean decayNormsAndBiases) implements OptimizerConfig {
    public Adam {
      ConfigException.positive("lr", lr);
      betas = checkBetas(betas);
      ConfigException.positive("eps", eps);
      ConfigException.atLeast("weight_decay", weightDecay, 0.0);
    }

    public static Adam defaults() { return new Adam(1e-3, List.of(0.9, 0.999), 1e-8, 0, false); }
  }

  /** Adam with decoupled weight decay (Loshchilov and Hutter). */
  @ConfigName("adamw")
  record AdamW(double lr, List<Double> betas, double eps, double weightDecay, boolean decayNormsAndBiases) implements OptimizerConfig {
    public AdamW {
      ConfigException.positive("lr", lr);
      betas = checkBetas(betas);
      ConfigException.positive("eps", eps);
      ConfigException.atLeast("weight_decay", weightDecay, 0.0);
    }

    public static AdamW defaults() { return new AdamW(1e-3, List.of(0.9, 0.999), 1e-8, 0.05, false); }
  }

  /** Layer-wise adaptive Adam for large batches (You et al. 2019). */
  @ConfigName("lamb")
  record Lamb(double lr, List<Double> betas, double eps, double weightDecay, boolean decayNormsAndBiases) implements OptimizerConfig {
    public Lamb {
      ConfigException.positive("lr", lr);
      betas = checkBetas(betas);
      ConfigException.positive("eps", eps);
      ConfigException.atLeast("weight_decay", weightDecay, 0.0);
    }

    public static Lamb defaults() { return new Lamb(1e-3, List.of(0.9, 0.999), 1e-6, 0.01, false); }
  }

  /** Layer-wise adaptive SGD for large batches (You et al. 2017); {@code trust_coefficient} is eta. */
  @ConfigName("lars")
  record Lars(double lr, double momentum, double trustCoefficient, double weightDecay, boolean decayNormsAndBiases)
      implements OptimizerConfig {
    public Lars {
      ConfigException.positive("lr", lr);
      ConfigException.inRange("momentum", momentum, 0, 1);
      ConfigException.positive("trust_coefficient", trustCoefficient);
      ConfigException.atLeast("weight_decay", weightDecay, 0.0);
    }

    public static Lars defaults() { return new Lars(0.1, 0.9, 0.001, 1e-4, false); }
  }

  private static List<Double> checkBetas(List<Double> betas) {
    if (betas.size() != 2 || betas.stream().anyMatch(b -> !(b >= 0 && b < 1)))
      throw ConfigException.invalid("betas", betas, "two numbers in [0, 1), e.g. [0.9, 0.999]");
    return List.copyOf(betas);
  }
}
