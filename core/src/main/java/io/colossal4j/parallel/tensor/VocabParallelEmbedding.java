package io.colossal4j.parallel.tensor;

import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.nn.Embedding;
import io.colossal4j.nn.Module;
import io.colossal4j.ops.Arith;
import io.colossal4j.ops.Indexing;
import io.colossal4j.ops.Views;
import io.colossal4j.tensor.Tensor;
import java.util.Map;
import java.util.OptionalLong;

/**
 * An embedding table [V, D] whose rows (the vocabulary) are divided over the tp group: rank r holds rows
 * [r·V/p, (r+1)·V/p). Forward: each rank looks up the ids it owns and writes zero rows for the others, and
 * {@link TpComm#reduceFromRegion} sums the ranks' tables. Exactly one rank contributes a non-zero row per
 * id, so the sum is exact: the output equals a single-device lookup bit for bit. The weight's gradient
 * on each rank is the output gradient scattered into the rows that rank owns.
 */
public final class VocabParallelEmbedding extends Module implements TensorParallelModule {
  private static final Placement.Shard ROWS = new Placement.Shard(0, 1);

  private final ProcessGroup tp;
  private final VocabSlice slice;
  private final Tensor weight;

  /** Takes this rank's rows of {@code full}'s current table; {@code full} is left unchanged. */
  public VocabParallelEmbedding(Embedding full, ProcessGroup tp) {
    this.tp = tp;
    this.weight = parameter("weight", ROWS.take(full.weight(), tp.rank(), tp.size()));
    this.slice = VocabSlice.of(weight.size(0), tp.rank(), tp.size());
  }

  /** ids (i32/i64, any shape, each in [0, V)) to [..., D], the same on every rank. */
  @Override public Tensor forward(Tensor ids) {
    slice.requireInVocab("VocabParallelEmbedding", ids, OptionalLong.empty());
    Tensor owned = slice.owned(ids);
    Tensor rows = Indexing.embedding(weight, slice.localIds(ids, owned));
    Tensor mask = Views.unsqueeze(Arith.cast(owned, weight.dtype()), -1);
    return TpComm.reduceFromRegion(Arith.mul(rows, mask), tp);
  }

  @Override public Map<String, Placement.Shard> shardedParameters() { return Map.of("weight", ROWS); }

  @Override public ProcessGroup group() { return tp; }

  public Tensor weight() { return weight; }

  @Override public String toString() {
    return "VocabParallelEmbedding(" + slice.vocab() + " x " + weight.size(1) + " over " + tp.name() + ", rows " + slice.start() + ".." + (slice.start() + slice.size() - 1) + " here)";
  }
}
