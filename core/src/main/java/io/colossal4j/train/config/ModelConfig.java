package io.colossal4j.train.config;

import io.colossal4j.models.ModelSpec;
import io.colossal4j.models.Zoo;
import java.util.Optional;

/**
 * Which zoo model to build ({@code name}, a preset of the zoo as timm names them, e.g. {@code vit_tiny_28},
 * {@code vit_base_patch16_224}, {@code resnet50}; {@code colossal models} lists them) and overrides of the preset.
 * Unset overrides keep the preset's values.
 */
public record ModelConfig(String name, Optional<Integer> numClasses, Optional<Integer> imageSize,
                          Optional<Integer> inChannels, Optional<Double> dropPath, Optional<Double> dropout) {
  public ModelConfig {
    if (!Zoo.names().contains(name))
      throw new ConfigException("name", "'" + name + "' is not in the model zoo" + Suggest.didYouMean(name, Zoo.names(), "")
          + "; valid: " + String.join(", ", Zoo.entries().keySet()));
    numClasses.ifPresent(n -> ConfigException.atLeast("num_classes", n, 2));
    imageSize.ifPresent(n -> ConfigException.atLeast("image_size", n, 1));
    inChannels.ifPresent(n -> ConfigException.atLeast("in_channels", n, 1));
    dropPath.ifPresent(p -> ConfigException.inRange("drop_path", p, 0, 1));
    dropout.ifPresent(p -> ConfigException.inRange("dropout", p, 0, 1));
  }

  public static ModelConfig defaults() {
    return new ModelConfig("vit_tiny_28", Optional.empty(), Optional.empty(), Optional.empty(), Optional.empty(), Optional.empty());
  }

  /** The zoo's spec: unset overrides become 0 ("the preset's value"). */
  public ModelSpec spec() {
    return new ModelSpec(name, numClasses.orElse(0), imageSize.orElse(0), inChannels.orElse(0), dropout.orElse(0.0), dropPath.orElse(0.0));
  }
}
