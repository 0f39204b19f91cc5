package io.colossal4j.nn;

import io.colossal4j.ops.LinAlg;
import io.colossal4j.tensor.Tensor;

/** y = x Wᵀ + b with W of shape [out, in] (PyTorch's layout and init). */
public final class Linear extends Module {
  private final int inFeatures;
  private final int outFeatures;
  private Tensor weight;
  private Tensor bias;

  public Linear(ModuleContext ctx, int inFeatures, int outFeatures, boolean bias) {
    if (inFeatures < 1 || outFeatures < 1) throw new IllegalArgumentException("Linear sizes must be >= 1, got in=" + inFeatures + " out=" + outFeatures);
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
    this.weight = parameter("weight", Init.torchDefault(ctx, inFeatures, outFeatures, inFeatures));
    this.bias = bias ? parameter("bias", Init.torchDefault(ctx, inFeatures, outFeatures)) : null;
  }

  @Override public Tensor forward(Tensor x) { return LinAlg.linear(x, weight, bias); }

  /**
   * residual + forward(x) ({@link LinAlg#linearAdd}): one fused GEMM where the backend has it, the residual of a
   * transformer block added in the projection's pass over its output; the same result as adding after forward.
   */
  public Tensor forwardAdd(Tensor x, Tensor residual) { return LinAlg.linearAdd(x, weight, bias, residual); }

  /**
   * gelu(forward(x)) ({@link LinAlg#linearGelu}): where the backend fuses it, the GELU backward and this layer's bias
   * gradient in one pass; the same values as the activation after forward.
   */
  public Tensor forwardGelu(Tensor x, LinAlg.Gelu gelu) { return LinAlg.linearGelu(x, weight, bias, gelu); }

  public Tensor weight() { return weight; }

  public Tensor bias() { return bias; }

  public int inFeatures() { return inFeatures; }

  public int outFeatures() { return outFeatures; }

  @Override public String toString() { return "Linear(" + inFeatures + " -> " + outFeatures + (bias == null ? ", no bias)" : ")"); }
}
