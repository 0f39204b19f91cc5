package io.colossal4j.distributed;

/**
 * A collective or point-to-point operation failed: a peer died, the operation timed out, the ranks
 * disagreed on sizes or types, or the group was aborted by another rank. The message names the rank
 * that reports it, the operation and the group, and the peer at fault when one is known.
 */
public final class CollectiveException extends RuntimeException {
  public CollectiveException(String message) { super(message); }

  public CollectiveException(String message, Throwable cause) { super(message, cause); }
}
