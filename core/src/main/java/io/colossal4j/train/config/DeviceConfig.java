package io.colossal4j.train.config;

import java.util.Optional;

/**
 * Where to compute. {@code threads}: CPU worker threads (0 = one per core). {@code max_memory}: an optional cap on
 * the device memory the run may use (e.g. {@code 23.3GiB} to emulate a 24 GB card on a larger one).
 */
public record DeviceConfig(Kind kind, int threads, Optional<MemorySize> maxMemory) {
  public enum Kind { CPU, CUDA }

  public DeviceConfig {
    ConfigException.atLeast("threads", threads, 0);
  }

  public static DeviceConfig defaults() { return new DeviceConfig(Kind.CPU, 0, Optional.empty()); }

  /** The thread count to use on a machine with {@code cores} cores. */
  public int threadsOn(int cores) { return threads == 0 ? cores : threads; }
}
