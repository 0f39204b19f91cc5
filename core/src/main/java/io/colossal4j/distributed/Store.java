package io.colossal4j.distributed;

import java.time.Duration;

/**
 * A key-value store all ranks of a job reach: the rendezvous (addresses, world size checks) and small
 * agreements between ranks. Values are bytes; {@link #add} keeps a counter as an 8-byte little-endian long.
 * Every blocking call has a timeout and fails with {@link StoreException} naming the key.
 * Thread-safe.
 */
public interface Store extends AutoCloseable {
  void set(String key, byte[] value);

  /** The value of {@code key}, waiting until some rank sets it or {@code timeout} passes. */
  byte[] get(String key, Duration timeout);

  /** Adds {@code delta} to the counter at {@code key} (absent counts as 0) and returns the new value. */
  long add(String key, long delta);

  /**
   * Sets {@code key} to {@code desired} if its value equals {@code expected} ({@code null}: the key is
   * absent); returns the value after the call (so the caller sees who won).
   */
  byte[] compareAndSet(String key, byte[] expected, byte[] desired);

  /**
   * Returns once {@code parties} callers have entered the barrier {@code name}; each name is used once per
   * job (callers add a counter for repeated barriers).
   */
  default void barrier(String name, int parties, Duration timeout) {
    long arrived = add("barrier/" + name + "/count", 1);
    if (arrived == parties) set("barrier/" + name + "/done", new byte[] {1});
    if (arrived > parties)
      throw new StoreException("barrier '" + name + "' expected " + parties + " parties but " + arrived + " arrived");
    get("barrier/" + name + "/done", timeout);
  }

  @Override void close();
}
