package io.colossal4j.tensor;

/**
 * A counter-based random stream: a 64-bit key and a 64-bit block counter for Philox4x32-10. Taking n
 * numbers advances the counter by ceil(n/4) blocks, so a stream's future is fully described by
 * (seed, counter): {@link #snapshot()} and {@link #restore} make recomputation (activation checkpointing)
 * and resumption (checkpoints) draw the same numbers. Streams are passed explicitly; {@link #fork} derives
 * an independent child stream, e.g. one per module or per data-parallel rank.
 */
public final class Rng {
  private final long seed;
  private long counter;

  public Rng(long seed) { this(seed, 0); }

  private Rng(long seed, long counter) {
    this.seed = seed;
    this.counter = counter;
  }

  public long seed() { return seed; }

  public long counter() { return counter; }

  /** Reserves n numbers; returns the block counter at which they start. */
  public long take(long n) {
    long start = counter;
    counter += (n + 3) / 4;
    return start;
  }

  /** An independent stream whose key is a hash of this key and {@code stream} (SplitMix64 finaliser). */
  public Rng fork(long stream) {
    return new Rng(mix(seed ^ mix(stream + 0x9E3779B97F4A7C15L)));
  }

  public Rng fork(String name) { return fork(name.hashCode() * 0x100000001B3L); }

  public State snapshot() { return new State(seed, counter); }

  public void restore(State s) {
    if (s.seed != seed) throw new TensorException("restoring a state of stream " + s.seed + " into stream " + seed);
    counter = s.counter;
  }

  /** A stream's position, as saved in checkpoints. */
  public record State(long seed, long counter) {}

  public static Rng of(State s) { return new Rng(s.seed, s.counter); }

  /** A uniform 64-bit value derived from the stream (advances it by one block); for host-side sampling. */
  public long nextLong() {
    long c = take(4);
    return mix(seed ^ mix(c));
  }

  /** A uniform double in [0, 1) (advances the stream). */
  public double nextDouble() { return (nextLong() >>> 11) * 0x1.0p-53; }

  private static long mix(long z) {
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    return z ^ (z >>> 31);
  }
}
