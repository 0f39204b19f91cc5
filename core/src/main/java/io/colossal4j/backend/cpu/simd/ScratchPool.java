package io.colossal4j.backend.cpu.simd;

import java.util.Arrays;

/**
 * Heap scratch arrays of the fast kernels, kept by their backend and handed out again, so that the per-task
 * buffers of a kernel call (attention's matrices, layer norm's gradient partials) are not garbage made anew on
 * every call of every step. Arrays are pooled by exact length, so a kernel sees the array it asked for.
 *
 * <p>Ownership: {@link #floats} lends an array to the caller until it calls {@link #give}; an array not given
 * back (a kernel that threw) is simply collected. Contents of a lent array are unspecified (what its last user
 * left) unless taken with {@link #zeroed}. Thread-safe: the tasks of one call take and give on several threads,
 * and a backend may serve more than one calling thread. The pool holds at most what was lent at once.
 */
final class ScratchPool {
  private int[] lengths = new int[8];
  private float[][][] stacks = new float[8][][];
  private int[] depth = new int[8];
  private int kinds;

  /** An array of exactly {@code length} floats, contents unspecified. */
  synchronized float[] floats(int length) {
    int k = kind(length);
    if (k >= 0 && depth[k] > 0) {
      float[] a = stacks[k][--depth[k]];
      stacks[k][depth[k]] = null;
      return a;
    }
    return new float[length];
  }

  /** An array of exactly {@code length} zeros. */
  float[] zeroed(int length) {
    float[] a = floats(length);
    Arrays.fill(a, 0f);
    return a;
  }

  /** Takes back arrays lent by {@link #floats} or {@link #zeroed}; the caller no longer uses them. */
  synchronized void give(float[]... arrays) {
    for (float[] a : arrays) push(a);
  }

  private void push(float[] a) {
    int k = kind(a.length);
    if (k < 0) {
      if (kinds == lengths.length) {
        lengths = Arrays.copyOf(lengths, kinds * 2);
        stacks = Arrays.copyOf(stacks, kinds * 2);
        depth = Arrays.copyOf(depth, kinds * 2);
      }
      k = kinds++;
      lengths[k] = a.length;
      stacks[k] = new float[4][];
    }
    if (depth[k] == stacks[k].length) stacks[k] = Arrays.copyOf(stacks[k], depth[k] * 2);
    stacks[k][depth[k]++] = a;
  }

  private int kind(int length) {
    for (int k = 0; k < kinds; k++) if (lengths[k] == length) return k;
    return -1;
  }
}
