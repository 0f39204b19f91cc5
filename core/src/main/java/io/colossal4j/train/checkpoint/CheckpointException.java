package io.colossal4j.train.checkpoint;

/** A checkpoint or safetensors file that cannot be written or read: the message names the file and what is wrong. */
public class CheckpointException extends RuntimeException {
  public CheckpointException(String message) { super(message); }

  public CheckpointException(String message, Throwable cause) { super(message, cause); }
}
