package io.colossal4j.data;

import io.colossal4j.tensor.Shape;

/**
 * One example: its features as a row-major float array of {@code shape} (images are [C, H, W] with values in
 * [0, 1] before normalisation) and its class label. The array is owned by the sample; transforms return new
 * samples rather than writing into one another's arrays.
 */
public record Sample(float[] x, Shape shape, int label) {
  public Sample {
    if (x.length != shape.numel())
      throw new DataException("sample has " + x.length + " values but shape " + shape + " needs " + shape.numel());
  }
}
