package io.colossal4j.distributed;

/** The rendezvous store failed: unreachable, refused (token, protocol version), timed out or malformed. */
public final class StoreException extends RuntimeException {
  public StoreException(String message) { super(message); }

  public StoreException(String message, Throwable cause) { super(message, cause); }
}
