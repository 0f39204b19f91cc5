package io.colossal4j.models;

/**
 * What the config says about the model: a zoo name and the overrides that adapt it to the data
 * (classes, image size, channels) and to training (drop path). Zero or negative means "the preset's value".
 */
public record ModelSpec(String name, int numClasses, int imageSize, int inChannels, double dropRate, double dropPathRate) {
  public static ModelSpec of(String name, int numClasses) { return new ModelSpec(name, numClasses, 0, 0, 0, 0); }
}
