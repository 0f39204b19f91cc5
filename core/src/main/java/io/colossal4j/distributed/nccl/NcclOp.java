package io.colossal4j.distributed.nccl;

/** The operations of the NCCL group, named as PyTorch names them, for messages users read. */
enum NcclOp {
  ALL_REDUCE("all_reduce"), REDUCE_SCATTER("reduce_scatter"), ALL_GATHER("all_gather"), BROADCAST("broadcast"),
  REDUCE("reduce"), ALL_TO_ALL("all_to_all"), SEND("send"), RECV("recv"), BARRIER("barrier");

  final String text;

  NcclOp(String text) { this.text = text; }
}
