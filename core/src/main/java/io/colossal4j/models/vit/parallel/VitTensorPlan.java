package io.colossal4j.models.vit.parallel;

import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.models.vit.Block;
import io.colossal4j.models.vit.VisionTransformer;
import io.colossal4j.parallel.tensor.TensorPlan;

/**
 * The 1D tensor-parallel plan of the ViT family (Megatron's transformer split): in every block, attention's
 * heads are divided over the tp ranks (qkv column-parallel by heads, proj row-parallel) and the MLP's hidden
 * units too (fc1 column-parallel, fc2 row-parallel): two all-reduces per block forward, two backward.
 * Patch embedding, class token, position embedding, norms and the classifier head stay replicated.
 * Requires heads, and the MLP hidden size, divisible by tp (the plan's build names the layer otherwise).
 */
public final class VitTensorPlan {
  private VitTensorPlan() {}

  public static TensorPlan plan(VisionTransformer vit, int tp) {
    var plan = TensorPlan.builder(vit, tp);
    for (Block b : vit.blocks())
      plan.columnwiseHeads(b.attn().qkv(), b.attn().heads()).rowwise(b.attn().proj())
          .columnwise(b.mlp().fc1()).rowwise(b.mlp().fc2());
    return plan.build();
  }

  /** Plans {@code vit} for the size of {@code tp} and applies the plan; returns the same, now parallel, model. */
  public static VisionTransformer parallelize(VisionTransformer vit, ProcessGroup tp) {
    return plan(vit, tp.size()).apply(vit, tp);
  }
}
