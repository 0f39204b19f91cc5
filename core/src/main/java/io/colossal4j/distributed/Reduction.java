package io.colossal4j.distributed;

/**
 * How a collective combines the ranks' values, element by element. {@link #AVG} is the sum divided by the
 * group size and is defined for floating tensors only (as in NCCL).
 */
public enum Reduction {
  SUM, AVG, MAX, MIN
}
