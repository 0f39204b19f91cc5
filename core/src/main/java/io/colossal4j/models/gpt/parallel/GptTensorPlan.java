package io.colossal4j.models.gpt.parallel;

import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.models.gpt.Gpt;
import io.colossal4j.models.gpt.GptBlock;
import io.colossal4j.parallel.tensor.TensorPlan;
import io.colossal4j.parallel.tensor.VocabParallelCrossEntropy;
import io.colossal4j.tensor.Tensor;

/**
 * The 1D tensor-parallel plan of the GPT family: per block, attention heads (c_attn column-parallel by
 * heads, c_proj row-parallel) and the MLP (c_fc column-parallel, c_proj row-parallel) divided over tp; the
 * token embedding wte and the LM head divided by vocabulary, the head's logits left sharded [B, T, V/tp]
 * for {@link #loss}, so the [B, T, V] logits are never gathered. Position embedding and norms stay
 * replicated. Requires heads, 4·n_embd and the vocabulary divisible by tp.
 */
public final class GptTensorPlan {
  private GptTensorPlan() {}

  public static TensorPlan plan(Gpt gpt, int tp) {
    var plan = TensorPlan.builder(gpt, tp).vocabwise(gpt.wte());
    for (GptBlock b : gpt.blocks())
      plan.columnwiseHeads(b.attn().cAttn(), b.attn().heads()).rowwise(b.attn().cProj())
          .columnwise(b.mlpFc()).rowwise(b.mlpProj());
    return plan.columnwise(gpt.lmHead()).build();
  }

  /** Plans {@code gpt} for the size of {@code tp} and applies the plan; returns the same, now parallel, model. */
  public static Gpt parallelize(Gpt gpt, ProcessGroup tp) {
    return plan(gpt, tp.size()).apply(gpt, tp);
  }

  /**
   * Mean next-token cross entropy of a parallelized GPT: logits [B, T, V/tp] (this rank's vocabulary slice),
   * targets [B, T] ids. Equals {@code Loss.crossEntropy} on the single-device [B·T, V] logits.
   */
  public static Tensor loss(Tensor logits, Tensor targets, ProcessGroup tp) {
    return VocabParallelCrossEntropy.apply(logits, targets, tp);
  }
}
