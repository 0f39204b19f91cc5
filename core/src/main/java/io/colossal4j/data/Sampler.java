package io.colossal4j.data;

/**
 * The order in which a loader visits a data set. {@link #indices(int)} is a pure function of the sampler's
 * construction and the epoch, so a resumed run re-derives the same order from the epoch number alone.
 */
public interface Sampler {
  /** Indices visited per epoch (by this rank, for a sharded sampler). */
  int length();

  /** The data-set indices of {@code epoch}, in visiting order; a fresh array the caller may keep. */
  int[] indices(int epoch);

  /** 0, 1, ..., n-1 every epoch. */
  static Sampler sequential(int n) { return new Samplers.Sequential(n); }

  /** A permutation of 0..n-1 that changes every epoch, derived from {@code seed} and the epoch. */
  static Sampler shuffled(int n, long seed) { return new Samplers.Shuffled(n, seed); }
}
