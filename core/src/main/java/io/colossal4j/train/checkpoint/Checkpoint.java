package io.colossal4j.train.checkpoint;

import io.colossal4j.tensor.Tensor;
import java.util.Map;

/**
 * Everything a run saves: the model's state dict (dotted names as PyTorch/timm use), the optimizer's state
 * (flattened to names such as {@code state.blocks.0.attn.qkv.weight.exp_avg}; the optimizer chooses them) and
 * the scalar state. The maps keep their iteration order in the files.
 */
public record Checkpoint(Map<String, Tensor> model, Map<String, Tensor> optimizer, TrainingState state) {
  public Checkpoint {
    model = java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(model));
    optimizer = java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(optimizer));
  }

  /**
   * Copies the saved model state into the live parameters and buffers of the model {@code modelName}, or throws
   * naming the model the checkpoint was made for and every parameter that is missing, unexpected or shaped
   * differently. Nothing is copied unless everything matches.
   */
  public void copyModelInto(Map<String, Tensor> live, String modelName) {
    String what = "this checkpoint (of model " + state.model() + ")"
        + (state.model().equals(modelName) ? "" : " was made for another model than " + modelName + " and");
    StateDicts.copyInto(live, model, what);
  }
}
