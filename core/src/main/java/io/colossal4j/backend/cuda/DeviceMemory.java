package io.colossal4j.backend.cuda;

/**
 * Raw device memory as the caching allocator sees it: the driver on a GPU, an in-memory fake in tests.
 * Implementations are called with the allocator's lock held.
 */
interface DeviceMemory {
  /** A fresh block of {@code bytes} (> 0), or 0 when the device has no room; other failures throw. */
  long allocate(long bytes);

  void free(long pointer);

  /** Waits until every queued use of the memory has finished (before blocks go back to the device). */
  void synchronize();

  /** Bytes the device has in total (for messages). */
  long totalBytes();
}
