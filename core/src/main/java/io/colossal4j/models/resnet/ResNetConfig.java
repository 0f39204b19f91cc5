package io.colossal4j.models.resnet;

import java.util.List;

/**
 * ResNet shape (He et al. 2016) with timm's names. {@code smallStem} swaps the 7×7/2 conv and max pool for
 * one 3×3/1 conv (the usual variant for 28×28 and 32×32 inputs).
 */
public record ResNetConfig(boolean bottleneck, List<Integer> layers, List<Integer> widths, int stemWidth, int inChannels, int numClasses, boolean smallStem) {
  private static final List<Integer> WIDTHS = List.of(64, 128, 256, 512);

  public ResNetConfig {
    layers = List.copyOf(layers);
    widths = List.copyOf(widths);
    if (layers.size() != 4 || layers.stream().anyMatch(n -> n < 1))
      throw new IllegalArgumentException("ResNet needs 4 stages of >= 1 blocks, got " + layers);
    if (widths.size() != 4 || widths.stream().anyMatch(n -> n < 1))
      throw new IllegalArgumentException("ResNet needs 4 stage widths >= 1, got " + widths);
  }

  public static ResNetConfig resnet18(int classes) { return new ResNetConfig(false, List.of(2, 2, 2, 2), WIDTHS, 64, 3, classes, false); }

  public static ResNetConfig resnet50(int classes) { return new ResNetConfig(true, List.of(3, 4, 6, 3), WIDTHS, 64, 3, classes, false); }

  public ResNetConfig withInput(int channels, boolean small) { return new ResNetConfig(bottleneck, layers, widths, stemWidth, channels, numClasses, small); }

  int expansion() { return bottleneck ? 4 : 1; }
}
