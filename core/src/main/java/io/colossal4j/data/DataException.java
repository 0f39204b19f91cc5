package io.colossal4j.data;

/** Missing, truncated or malformed data, or a bad data option: the message names the file or value and what is valid. */
public class DataException extends RuntimeException {
  public DataException(String message) { super(message); }

  public DataException(String message, Throwable cause) { super(message, cause); }
}
