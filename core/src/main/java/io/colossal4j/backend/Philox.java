package io.colossal4j.backend;

/**
 * Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11): a counter-based
 * generator, so element i of a random tensor is a pure function of (seed, offset + i) and any backend,
 * thread or rank can produce any slice of the stream without sharing state.
 */
public final class Philox {
  private Philox() {}

  private static final int M0 = 0xD2511F53, M1 = 0xCD9E8D57;
  private static final int W0 = 0x9E3779B9, W1 = 0xBB67AE85;

  /** The four 32-bit outputs for 128-bit counter (ctr, 0) under 64-bit key {@code seed}. */
  public static void block(long seed, long ctr, int[] out) {
    int c0 = (int) ctr, c1 = (int) (ctr >>> 32), c2 = 0, c3 = 0;
    int k0 = (int) seed, k1 = (int) (seed >>> 32);
    for (int round = 0; round < 10; round++) {
      long p0 = (M0 & 0xffffffffL) * (c0 & 0xffffffffL);
      long p1 = (M1 & 0xffffffffL) * (c2 & 0xffffffffL);
      int n0 = (int) (p1 >>> 32) ^ c1 ^ k0;
      int n1 = (int) p1;
      int n2 = (int) (p0 >>> 32) ^ c3 ^ k1;
      int n3 = (int) p0;
      c0 = n0; c1 = n1; c2 = n2; c3 = n3;
      k0 += W0; k1 += W1;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
  }

  /** Maps 32 random bits to a float in [0, 1) with 24 bits of precision. */
  public static float toUnitFloat(int bits) {
    return (bits >>> 8) * 0x1.0p-24f;
  }

  /** Element {@code i} of the uniform stream (seed, offset): counter offset + i/4, lane i%4. */
  public static float uniform(long seed, long offset, long i) {
    int[] b = new int[4];
    block(seed, offset + i / 4, b);
    return toUnitFloat(b[(int) (i & 3)]);
  }
}
