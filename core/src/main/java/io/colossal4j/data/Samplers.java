package io.colossal4j.data;

import io.colossal4j.tensor.Rng;

/** The plain samplers. */
final class Samplers {
  private Samplers() {}

  record Sequential(int n) implements Sampler {
    Sequential {
      if (n < 0) throw new DataException("sampler size must be >= 0, got " + n);
    }

    @Override public int length() { return n; }

    @Override public int[] indices(int epoch) {
      int[] out = new int[n];
      for (int i = 0; i < n; i++) out[i] = i;
      return out;
    }
  }

  record Shuffled(int n, long seed) implements Sampler {
    Shuffled {
      if (n < 0) throw new DataException("sampler size must be >= 0, got " + n);
    }

    @Override public int length() { return n; }

    @Override public int[] indices(int epoch) { return permutation(n, seed, epoch); }
  }

  /** Fisher-Yates shuffle of 0..n-1 driven by the stream (seed, fork(epoch)). */
  static int[] permutation(int n, long seed, int epoch) {
    int[] out = new int[n];
    for (int i = 0; i < n; i++) out[i] = i;
    Rng rng = new Rng(seed).fork(epoch);
    for (int i = n - 1; i > 0; i--) {
      int j = (int) Long.remainderUnsigned(rng.nextLong(), i + 1L);
      int t = out[i];
      out[i] = out[j];
      out[j] = t;
    }
    return out;
  }
}
