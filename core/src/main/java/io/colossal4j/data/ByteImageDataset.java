package io.colossal4j.data;

import io.colossal4j.tensor.Shape;

/**
 * Images held in memory as unsigned bytes (as MNIST and CIFAR store them), returned as floats in [0, 1]
 * (value / 255, like torchvision's ToTensor). Immutable after construction, hence thread-safe.
 */
final class ByteImageDataset implements Dataset {
  private final String name;
  private final byte[] pixels;
  private final byte[] labels;
  private final Shape shape;
  private final int numClasses;
  private final int sampleBytes;

  ByteImageDataset(String name, byte[] pixels, byte[] labels, Shape shape, int numClasses) {
    this.sampleBytes = Math.toIntExact(shape.numel());
    if ((long) labels.length * sampleBytes != pixels.length)
      throw new DataException(name + ": " + labels.length + " labels but " + pixels.length / sampleBytes + " images");
    for (int i = 0; i < labels.length; i++)
      if ((labels[i] & 0xff) >= numClasses)
        throw new DataException(name + ": label " + (labels[i] & 0xff) + " of sample " + i + " is not a class 0.." + (numClasses - 1) + " (corrupt file?)");
    this.name = name;
    this.pixels = pixels;
    this.labels = labels;
    this.shape = shape;
    this.numClasses = numClasses;
  }

  @Override public int size() { return labels.length; }

  @Override public Sample get(int index) {
    checkIndex(index);
    float[] x = new float[sampleBytes];
    int base = index * sampleBytes;
    for (int i = 0; i < sampleBytes; i++) x[i] = (pixels[base + i] & 0xff) / 255f;
    return new Sample(x, shape, labels[index] & 0xff);
  }

  @Override public Shape sampleShape() { return shape; }

  @Override public int numClasses() { return numClasses; }

  @Override public String describe() { return name + ", " + size() + " samples of " + shape; }
}
