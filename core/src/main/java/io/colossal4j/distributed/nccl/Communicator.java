package io.colossal4j.distributed.nccl;

/**
 * One NCCL communicator of this rank and the stream its operations run on (one stream per communicator, as in
 * PyTorch: operations of different groups never wait behind each other). Mutated only under the {@link NcclWorld}'s lock; {@code aborted} is read by any thread.
 *
 * @param name for messages: the group and, for point-to-point, the direction ({@code pp[0, 1] send 0>1})
 */
final class Communicator {
  final String name;
  final int nranks, rank;
  final long stream;
  /** The communicator operations run on: blocking, split from {@link #parent} (0 until created). */
  volatile long handle;
  /** The non-blocking communicator created first (abortable while peers join); 0 when {@link #handle} is it. */
  volatile long parent;
  volatile boolean aborted;

  Communicator(String name, int nranks, int rank, long stream) {
    this.name = name;
    this.nranks = nranks;
    this.rank = rank;
    this.stream = stream;
  }

  /** The handle for a new operation; an aborted communicator accepts none. */
  long live() {
    if (aborted || handle == 0) throw new IllegalStateException("communicator " + name + " is " + (aborted ? "aborted" : "not created"));
    return handle;
  }

  @Override public String toString() { return "Communicator(" + name + ", rank " + rank + "/" + nranks + ")"; }
}
