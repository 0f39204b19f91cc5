package io.colossal4j.backend.cuda.ffi;

/**
 * CUDA cannot be used here: a library is missing, no driver or device answers, or the device is too old.
 * The message says what was looked for and where, so the fix is visible without a debugger.
 */
public final class CudaUnavailableException extends CudaException {
  public CudaUnavailableException(String message) { super(message); }
}
