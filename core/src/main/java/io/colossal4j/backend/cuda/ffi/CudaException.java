package io.colossal4j.backend.cuda.ffi;

import io.colossal4j.tensor.TensorException;

/**
 * A failed call into a CUDA library: the message names the library function, the status code and the
 * library's own description of it (cuGetErrorString, nvrtcGetErrorString, cublasLtGetStatusString, ...).
 */
public class CudaException extends TensorException {
  private final int status;

  public CudaException(String message, int status) {
    super(message);
    this.status = status;
  }

  public CudaException(String message) { this(message, -1); }

  /** The library's status code, or -1 when the failure did not come from a status. */
  public int status() { return status; }
}
