package io.colossal4j.parallel.tensor;

import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.nn.Linear;
import io.colossal4j.nn.Module;
import io.colossal4j.ops.Arith;
import io.colossal4j.ops.LinAlg;
import io.colossal4j.tensor.Tensor;
import java.util.Map;

/**
 * A Linear [out, in] whose input features are divided over the tp group: this rank holds in/size columns of
 * the weight and receives the matching slice of the input (the sharded output of a column-parallel layer).
 *
 * <p>Forward: x_r [..., in/size] → x_r·W_rᵀ (a partial sum) → {@link TpComm#reduceFromRegion} [..., out] → + b.
 * The bias is replicated and added once, after the reduction (adding it on every rank before the sum would
 * count it size times); its gradient, like the output, is then identical on every rank.
 */
public final class RowParallelLinear extends Module implements TensorParallelModule {
  /** What the layer receives: this rank's slice of the input, or the full input (sliced here). */
  public enum Input { SHARDED, REPLICATED }

  private static final Placement.Shard COLUMNS = new Placement.Shard(1, 1);

  private final ProcessGroup tp;
  private final Input input;
  private final int inFeatures;
  private final int outFeatures;
  private final Tensor weight;
  private final Tensor bias;

  /** Takes this rank's slice of {@code full}'s current weights and a copy of its bias; {@code full} is left unchanged. */
  public RowParallelLinear(Linear full, ProcessGroup tp, Input input) {
    this.tp = tp;
    this.input = input;
    this.inFeatures = full.inFeatures();
    this.outFeatures = full.outFeatures();
    this.weight = parameter("weight", COLUMNS.take(full.weight(), tp.rank(), tp.size()));
    this.bias = full.bias() == null ? null : parameter("bias", new Placement.Replicate().copy(full.bias()));
  }

  @Override public Tensor forward(Tensor x) {
    Tensor in = switch (input) {
      case SHARDED -> x;
      case REPLICATED -> TpComm.scatterToRegion(x, tp);
    };
    Tensor y = TpComm.reduceFromRegion(LinAlg.linear(in, weight, null), tp);
    return bias == null ? y : Arith.add(y, bias);
  }

  @Override public Map<String, Placement.Shard> shardedParameters() { return Map.of("weight", COLUMNS); }

  @Override public ProcessGroup group() { return tp; }

  public Tensor weight() { return weight; }

  public Tensor bias() { return bias; }

  @Override public String toString() {
    return "RowParallelLinear(" + inFeatures + " -> " + outFeatures + " over " + tp.name() + ", " + inFeatures / tp.size() + " inputs per rank, input " + input + ")";
  }
}
