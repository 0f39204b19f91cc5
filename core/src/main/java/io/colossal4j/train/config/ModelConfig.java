package io.colossal4j.train.config;

import java.util.Optional;

/**
 * Which zoo model to build: {@code name} (e.g. {@code vit}, {@code resnet}), {@code preset} (a size within the family,
 * e.g. {@code tiny_28}, {@code b16}) and overrides of the preset. Unset overrides keep the preset's values;
 * {@code num_classes} and {@code image_size} default to the data set's. The zoo checks the names against its list.
 */
public record ModelConfig(String name, String preset, Optional<Integer> numClasses, Optional<Integer> imageSize,
                          Optional<Integer> inChannels, Optional<Double> dropPath, Optional<Double> dropout) {
  public ModelConfig {
    if (name.isBlank()) throw ConfigException.invalid("name", name, "a model family of the zoo (see `colossal models`)");
    numClasses.ifPresent(n -> ConfigException.atLeast("num_classes", n, 2));
    imageSize.ifPresent(n -> ConfigException.atLeast("image_size", n, 1));
    inChannels.ifPresent(n -> ConfigException.atLeast("in_channels", n, 1));
    dropPath.ifPresent(p -> ConfigException.inRange("drop_path", p, 0, 1));
    dropout.ifPresent(p -> ConfigException.inRange("dropout", p, 0, 1));
  }

  public static ModelConfig defaults() {
    return new ModelConfig("vit", "tiny_28", Optional.empty(), Optional.empty(), Optional.empty(), Optional.empty(), Optional.empty());
  }
}
