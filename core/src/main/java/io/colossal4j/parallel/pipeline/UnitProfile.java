package io.colossal4j.parallel.pipeline;

/**
 * What one unit costs on one micro-batch: its parameters, the bytes they occupy with their gradients and
 * optimizer state ({@code modelStateBytes}), the measured forward and backward time, and the bytes of the
 * activations its autograd graph keeps alive until backward ({@code activationBytes}, including its output).
 */
public record UnitProfile(String name, long parameters, long modelStateBytes, double forwardSeconds, double backwardSeconds,
                          long activationBytes) {
  public UnitProfile {
    if (parameters < 0 || modelStateBytes < 0 || activationBytes < 0 || !(forwardSeconds >= 0) || !(backwardSeconds >= 0))
      throw new IllegalArgumentException("unit " + name + ": costs must be non-negative, got " + this);
  }

  /** Forward + backward time. */
  public double seconds() { return forwardSeconds + backwardSeconds; }

  /** Model state plus the activations of one micro-batch. */
  public long memoryBytes() { return modelStateBytes + activationBytes; }
}
