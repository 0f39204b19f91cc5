package io.colossal4j.data;

import io.colossal4j.tensor.Rng;
import java.util.List;

/**
 * A per-sample transformation. Random transforms draw only from the given stream, which the loader derives
 * from (seed, epoch, sample index), so augmentation is reproducible and independent of the worker thread that
 * runs it. Implementations are stateless and thread-safe; they return a new sample.
 */
@FunctionalInterface
public interface Transform {
  Sample apply(Sample s, Rng rng);

  Transform IDENTITY = (s, rng) -> s;

  /** Applies {@code steps} in order, each with its own child stream (so adding a step does not shift the others' numbers). */
  static Transform compose(List<Transform> steps) {
    List<Transform> copy = List.copyOf(steps);
    return (s, rng) -> {
      for (int i = 0; i < copy.size(); i++) s = copy.get(i).apply(s, rng.fork(i));
      return s;
    };
  }
}
