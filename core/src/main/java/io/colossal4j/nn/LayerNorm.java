package io.colossal4j.nn;

import io.colossal4j.ops.Norm;
import io.colossal4j.tensor.Tensor;

/** Layer norm over the last dim, or over the channel dim of NCHW ({@code channelsFirst}, ConvNeXt's LayerNorm2d). */
public final class LayerNorm extends Module {
  private final Tensor weight;
  private final Tensor bias;
  private final double eps;
  private final boolean channelsFirst;

  public LayerNorm(ModuleContext ctx, int dim, double eps, boolean channelsFirst) {
    this.weight = parameter("weight", Init.ones(ctx, dim));
    this.bias = parameter("bias", Init.zeros(ctx, dim));
    this.eps = eps;
    this.channelsFirst = channelsFirst;
  }

  public LayerNorm(ModuleContext ctx, int dim) { this(ctx, dim, 1e-6, false); }

  @Override public Tensor forward(Tensor x) {
    return channelsFirst ? Norm.layerNorm2d(x, weight, bias, eps) : Norm.layerNorm(x, weight, bias, eps);
  }
}
