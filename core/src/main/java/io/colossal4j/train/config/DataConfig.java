package io.colossal4j.train.config;

import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/**
 * The data set and its loading. {@code path} defaults to where the data set is usually installed
 * ({@code /usr/share/datasets/fashion-mnist} for Fashion-MNIST); {@code image_size} resizes samples (default:
 * the data set's own size; required for an image folder, which reads {@code <path>/train} and {@code <path>/test}
 * or {@code <path>/val}); {@code num_workers} loader threads build {@code prefetch} batches ahead.
 */
public record DataConfig(Name name, Optional<Path> path, Optional<Integer> imageSize, Augmentation augmentation,
                         int numWorkers, int prefetch, Synthetic synthetic) {
  /** The data sets we read. */
  public enum Name implements ConfigEnum {
    FASHION_MNIST, MNIST, CIFAR10, IMAGE_FOLDER, SYNTHETIC;

    @Override public String configName() { return name().toLowerCase(java.util.Locale.ROOT); }
  }

  public DataConfig {
    imageSize.ifPresent(n -> ConfigException.atLeast("image_size", n, 1));
    ConfigException.atLeast("num_workers", numWorkers, 0);
    ConfigException.atLeast("prefetch", prefetch, 1);
    if (name == Name.IMAGE_FOLDER && path.isEmpty())
      throw new ConfigException("path", "data.name image_folder needs data.path: a directory with one subdirectory of images per class");
  }

  public static DataConfig defaults() {
    return new DataConfig(Name.FASHION_MNIST, Optional.empty(), Optional.empty(), Augmentation.defaults(), 2, 4, Synthetic.defaults());
  }

  /**
   * Training-time augmentation (evaluation only normalises). {@code random_crop_padding}: pad by this many pixels,
   * then crop back at a random offset (0 = off). {@code mean}/{@code std}: per channel, default the data set's.
   */
  public record Augmentation(int randomCropPadding, boolean horizontalFlip, boolean normalize,
                             Optional<List<Double>> mean, Optional<List<Double>> std) {
    public Augmentation {
      ConfigException.atLeast("random_crop_padding", randomCropPadding, 0);
      if (mean.isPresent() != std.isPresent() || (mean.isPresent() && mean.get().size() != std.get().size()))
        throw new ConfigException("std", "mean and std must be given together with one value per channel, got mean "
            + mean.map(Object::toString).orElse("(unset)") + " and std " + std.map(Object::toString).orElse("(unset)"));
      std.ifPresent(s -> s.forEach(v -> ConfigException.positive("std", v)));
    }

    public static Augmentation defaults() {
      return new Augmentation(0, false, true, Optional.empty(), Optional.empty());
    }
  }

  /** The synthetic data set: class patterns plus Gaussian noise, of any sample shape. */
  public record Synthetic(int trainSize, int testSize, int numClasses, List<Integer> shape, double noise) {
    public Synthetic {
      ConfigException.atLeast("train_size", trainSize, 1);
      ConfigException.atLeast("test_size", testSize, 1);
      ConfigException.atLeast("num_classes", numClasses, 2);
      if (shape.isEmpty() || shape.stream().anyMatch(d -> d < 1))
        throw ConfigException.invalid("shape", shape, "a non-empty list of sizes >= 1, e.g. [1, 28, 28]");
      ConfigException.atLeast("noise", noise, 0.0);
      shape = List.copyOf(shape);
    }

    public static Synthetic defaults() { return new Synthetic(60000, 10000, 10, List.of(1, 28, 28), 1.0); }
  }
}
