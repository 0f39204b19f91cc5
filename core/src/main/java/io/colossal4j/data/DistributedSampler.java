package io.colossal4j.data;

/**
 * Shards one epoch's index list over data-parallel ranks so that the ranks together make one pass over the
 * data set (not one pass each), with the semantics of PyTorch's {@code DistributedSampler}:
 * <ul>
 *   <li>the full list is 0..n-1, or, with {@code shuffle}, a permutation derived from (seed, epoch) that is the
 *       same on every rank;</li>
 *   <li>{@link Tail#PAD}: the list is extended by repeating its head until its length is a multiple of the
 *       number of ranks (each rank gets ceil(n / ranks) indices; a few samples are seen twice per epoch);</li>
 *   <li>{@link Tail#DROP}: the list is cut to a multiple of the number of ranks (each rank gets
 *       floor(n / ranks); up to ranks-1 samples are skipped per epoch);</li>
 *   <li>rank r takes positions r, r + ranks, r + 2·ranks, ... of that list.</li>
 * </ul>
 * Every rank therefore has the same {@link #length()}, which collectives need (no rank waits for a missing batch).
 */
public record DistributedSampler(int n, int ranks, int rank, boolean shuffle, long seed, Tail tail) implements Sampler {
  /** What to do with the n mod ranks samples that do not divide evenly. */
  public enum Tail { PAD, DROP }

  public DistributedSampler {
    if (n < 0) throw new DataException("distributed sampler: data set size must be >= 0, got " + n);
    if (ranks < 1) throw new DataException("distributed sampler: ranks must be >= 1, got " + ranks);
    if (rank < 0 || rank >= ranks) throw new DataException("distributed sampler: rank " + rank + " is out of range 0.." + (ranks - 1));
    if (tail == Tail.PAD && n == 0 && ranks > 0) throw new DataException("distributed sampler: cannot pad an empty data set");
  }

  @Override public int length() {
    return tail == Tail.DROP ? n / ranks : (n + ranks - 1) / ranks;
  }

  @Override public int[] indices(int epoch) {
    int[] all = shuffle ? Samplers.permutation(n, seed, epoch) : new Samplers.Sequential(n).indices(epoch);
    int per = length();
    int[] mine = new int[per];
    for (int k = 0; k < per; k++) mine[k] = all[(rank + k * ranks) % n]; // positions past n wrap to the head (padding)
    return mine;
  }
}
