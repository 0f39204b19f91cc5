package io.colossal4j.parallel.tensor;

import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.nn.Linear;
import io.colossal4j.nn.Module;
import io.colossal4j.ops.LinAlg;
import io.colossal4j.tensor.Tensor;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A Linear [out, in] whose output features are divided over the tp group: this rank holds out/size rows of
 * the weight (and the matching bias entries) and computes those output features from the full input.
 *
 * <p>Forward: x [..., in] (the same on every rank) → {@link TpComm#copyToRegion} → x·W_rᵀ + b_r [..., out/size]
 * → optionally {@link TpComm#gatherFromRegion} back to [..., out]. The input's gradient is summed over the
 * ranks by copyToRegion's backward. With {@code blocks} = 3 the output is a fused q/k/v projection and the
 * rank's rows are its heads of q, of k and of v ({@link Placement.Shard}); such an output stays sharded,
 * which is what attention on the rank's heads consumes.
 */
public final class ColumnParallelLinear extends Module implements TensorParallelModule {
  /** Whether the output stays sliced (feeding a row-parallel layer or the vocab-parallel loss) or is gathered. */
  public enum Output { SHARDED, GATHERED }

  private final ProcessGroup tp;
  private final Placement.Shard placement;
  private final Output output;
  private final int inFeatures;
  private final int outFeatures;
  private final Tensor weight;
  private final Tensor bias;

  /** Takes this rank's slice of {@code full}'s current weights; {@code full} itself is left unchanged. */
  public ColumnParallelLinear(Linear full, ProcessGroup tp, int blocks, Output output) {
    if (output == Output.GATHERED && blocks != 1)
      throw new IllegalArgumentException("a fused " + blocks + "-block column-parallel output cannot be gathered into the single-device layout; keep it SHARDED");
    this.tp = tp;
    this.placement = new Placement.Shard(0, blocks);
    this.output = output;
    this.inFeatures = full.inFeatures();
    this.outFeatures = full.outFeatures();
    this.weight = parameter("weight", placement.take(full.weight(), tp.rank(), tp.size()));
    this.bias = full.bias() == null ? null : parameter("bias", placement.take(full.bias(), tp.rank(), tp.size()));
  }

  @Override public Tensor forward(Tensor x) {
    Tensor y = LinAlg.linear(TpComm.copyToRegion(x, tp), weight, bias);
    return switch (output) {
      case SHARDED -> y;
      case GATHERED -> TpComm.gatherFromRegion(y, tp);
    };
  }

  @Override public Map<String, Placement.Shard> shardedParameters() {
    Map<String, Placement.Shard> m = new LinkedHashMap<>();
    m.put("weight", placement);
    if (bias != null) m.put("bias", placement);
    return m;
  }

  @Override public ProcessGroup group() { return tp; }

  public Tensor weight() { return weight; }

  public Tensor bias() { return bias; }

  @Override public String toString() {
    return "ColumnParallelLinear(" + inFeatures + " -> " + outFeatures + " over " + tp.name() + ", " + outFeatures / tp.size()
        + " per rank" + (placement.blocks() > 1 ? " in " + placement.blocks() + " blocks" : "") + ", output " + output + ")";
  }
}
