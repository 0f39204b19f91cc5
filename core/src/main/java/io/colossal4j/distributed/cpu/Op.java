package io.colossal4j.distributed.cpu;

/** The operations a message can belong to; their names are PyTorch's, for messages users read. */
enum Op {
  ALL_REDUCE("all_reduce"), REDUCE_SCATTER("reduce_scatter"), ALL_GATHER("all_gather"), BROADCAST("broadcast"),
  REDUCE("reduce"), ALL_TO_ALL("all_to_all"), SEND("send"), RECV("recv"), BARRIER("barrier"),
  /** Control: the sender failed and tells every peer why (payload: UTF-8 reason). */
  ABORT("abort"),
  /** Control: the sender closes its group normally; its connection ending afterwards is not a failure. */
  BYE("bye"),
  /** Control: the sender published or consumed shared memory that the receiver sleeps on (no payload). */
  WAKE("wake"),
  /** A collective allocation of a shared buffer (its signal carries the dtype and numel every member asked for). */
  ALLOCATE_SHARED("allocate_shared");

  final String text;

  Op(String text) { this.text = text; }

  static Op fromCode(int code) {
    Op[] all = values();
    if (code < 0 || code >= all.length) throw new IllegalArgumentException("unknown operation code " + code);
    return all[code];
  }
}
