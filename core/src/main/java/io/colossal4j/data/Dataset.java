package io.colossal4j.data;

import io.colossal4j.tensor.Shape;

/**
 * Random access to labelled examples. Every sample has {@link #sampleShape()}; labels are in
 * [0, {@link #numClasses()}). Implementations must be safe to call from several loader threads at once and
 * must return the same sample for the same index every time (randomness belongs to transforms, which are
 * seeded per epoch and index).
 */
public interface Dataset {
  int size();

  Sample get(int index);

  Shape sampleShape();

  int numClasses();

  /** A short description for logs ({@code fashion-mnist train, 60000 samples}). */
  String describe();

  /** An index check with a message naming the data set and the valid range. */
  default void checkIndex(int index) {
    if (index < 0 || index >= size())
      throw new DataException(describe() + ": sample index " + index + " is out of range 0.." + (size() - 1));
  }
}
