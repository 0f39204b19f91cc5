package io.colossal4j.backend.cpu;

import java.util.Arrays;

/**
 * The free blocks of a {@link StepArena}: disjoint {@code [position, position + size)} ranges kept sorted by
 * position in parallel primitive arrays, so adding, merging and taking allocate no objects (after the arrays
 * have grown to the step's largest count, which the first step reaches).
 *
 * <p>Policy: {@link #take} picks the smallest block that fits (best fit keeps large holes for large tensors)
 * and, among blocks of that size, the one freed last (its memory is the likeliest to be in cache); it hands
 * out the block's start and keeps the rest. {@link #add} merges a block with free neighbours that touch it.
 * A step has tens to a few hundred free blocks at a time, so a linear best-fit scan costs less than a tree's
 * node allocations would. Not thread-safe: the arena's one thread uses it.
 */
final class FreeBlocks {
  private long[] pos = new long[64];
  private long[] size = new long[64];
  /** When each block was last freed or merged (a counter): the tie-break toward recently touched memory. */
  private long[] stamp = new long[64];
  private int count;
  private long clock;

  int count() { return count; }

  void clear() { count = 0; }

  /**
   * The position of a block of {@code need} bytes cut from the start of the best-fitting free block, or -1 when
   * none is large enough.
   */
  long take(long need) {
    int best = -1;
    for (int i = 0; i < count; i++) {
      long s = size[i];
      if (s < need) continue;
      if (best < 0 || s < size[best] || (s == size[best] && stamp[i] > stamp[best])) best = i;
    }
    if (best < 0) return -1;
    long at = pos[best];
    if (size[best] == need) removeAt(best);
    else {   // the rest stays at the same place in position order
      pos[best] += need;
      size[best] -= need;
    }
    return at;
  }

  /** Adds {@code [at, at + bytes)}, which overlaps no free block, merging it with the free blocks that touch it. */
  void add(long at, long bytes) {
    int i = firstAfter(at);   // blocks [0, i) start before at
    boolean joinsLeft = i > 0 && pos[i - 1] + size[i - 1] == at;
    boolean joinsRight = i < count && pos[i] == at + bytes;
    long now = ++clock;
    if (joinsLeft && joinsRight) {
      size[i - 1] += bytes + size[i];
      stamp[i - 1] = now;
      removeAt(i);
    } else if (joinsLeft) {
      size[i - 1] += bytes;
      stamp[i - 1] = now;
    } else if (joinsRight) {
      pos[i] = at;
      size[i] += bytes;
      stamp[i] = now;
    } else {
      insertAt(i, at, bytes, now);
    }
  }

  /** Removes the free block that ends exactly at {@code end} and returns its position, or -1 if there is none. */
  long removeEndingAt(long end) {
    int i = firstAfter(end - 1) - 1;   // the last block starting before end
    if (i < 0 || pos[i] + size[i] != end) return -1;
    long at = pos[i];
    removeAt(i);
    return at;
  }

  /** Index of the first block whose position is greater than {@code at} (binary search). */
  private int firstAfter(long at) {
    int lo = 0, hi = count;
    while (lo < hi) {
      int mid = (lo + hi) >>> 1;
      if (pos[mid] <= at) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private void insertAt(int i, long at, long bytes, long now) {
    if (count == pos.length) {
      pos = Arrays.copyOf(pos, count * 2);
      size = Arrays.copyOf(size, count * 2);
      stamp = Arrays.copyOf(stamp, count * 2);
    }
    System.arraycopy(pos, i, pos, i + 1, count - i);
    System.arraycopy(size, i, size, i + 1, count - i);
    System.arraycopy(stamp, i, stamp, i + 1, count - i);
    pos[i] = at;
    size[i] = bytes;
    stamp[i] = now;
    count++;
  }

  private void removeAt(int i) {
    System.arraycopy(pos, i + 1, pos, i, count - i - 1);
    System.arraycopy(size, i + 1, size, i, count - i - 1);
    System.arraycopy(stamp, i + 1, stamp, i, count - i - 1);
    count--;
  }
}
