package io.colossal4j.optim;

import io.colossal4j.tensor.Tensor;
import java.util.LinkedHashMap;
import java.util.Map;

/** Parameters sharing hyper-parameters: their own weight decay and a multiplier on the scheduled learning rate. */
public record ParamGroup(String name, Map<String, Tensor> params, double weightDecay, double lrScale) {
  public ParamGroup {
    params = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(params));
    if (weightDecay < 0) throw new IllegalArgumentException("weight decay must be >= 0, got " + weightDecay + " for group " + name);
    if (!(lrScale > 0)) throw new IllegalArgumentException("lr scale must be > 0, got " + lrScale + " for group " + name);
  }

  /**
   * The usual split: weight decay on matrices and convolution kernels, none on biases, norm weights and
   * other 1-D parameters, nor on position embeddings and class tokens (timm's convention).
   */
  public static java.util.List<ParamGroup> decayAndNoDecay(Map<String, Tensor> named, double weightDecay) {
    Map<String, Tensor> decay = new LinkedHashMap<>(), noDecay = new LinkedHashMap<>();
    named.forEach((n, p) -> {
      boolean skip = p.rank() <= 1 || n.endsWith(".bias") || n.endsWith("pos_embed") || n.endsWith("cls_token")
          || n.endsWith("relative_position_bias_table") || n.endsWith("logit_scale");
      (skip ? noDecay : decay).put(n, p);
    });
    java.util.List<ParamGroup> out = new java.util.ArrayList<>();
    if (!decay.isEmpty()) out.add(new ParamGroup("decay", decay, weightDecay, 1));
    if (!noDecay.isEmpty()) out.add(new ParamGroup("no_decay", noDecay, 0, 1));
    return out;
  }

  public static java.util.List<ParamGroup> single(Map<String, Tensor> named, double weightDecay) {
    return java.util.List.of(new ParamGroup("all", named, weightDecay, 1));
  }
}
