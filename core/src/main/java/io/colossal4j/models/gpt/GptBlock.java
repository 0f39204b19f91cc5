package io.colossal4j.models.gpt;

import io.colossal4j.nn.Activation;
import io.colossal4j.nn.Dropout;
import io.colossal4j.nn.LayerNorm;
import io.colossal4j.nn.Layers;
import io.colossal4j.nn.Linear;
import io.colossal4j.nn.Module;
import io.colossal4j.nn.ModuleContext;
import io.colossal4j.nn.Sequential;
import io.colossal4j.ops.Arith;
import io.colossal4j.tensor.Tensor;

/**
 * ln_1 → attn → residual; ln_2 → mlp (c_fc, GELU-tanh, c_proj) → residual. When the dropouts are the identity
 * (rate 0 or eval mode), c_proj of each branch adds the residual inside its GEMM ({@link Linear#forwardAdd}).
 */
public final class GptBlock extends Module {
  GptBlock(ModuleContext ctx, GptConfig c) {
    child("ln_1", new LayerNorm(ctx, c.nEmbd(), 1e-5, false));
    child("attn", new CausalSelfAttention(ctx, c));
    child("ln_2", new LayerNorm(ctx, c.nEmbd(), 1e-5, false));
    child("mlp", new Sequential()
        .add("c_fc", new Linear(ctx, c.nEmbd(), 4 * c.nEmbd(), c.bias()))
        .add("gelu", new Activation(Activation.Kind.GELU_TANH))
        .add("c_proj", new Linear(ctx, 4 * c.nEmbd(), c.nEmbd(), c.bias()))
        .add("dropout", new Dropout(ctx, c.dropout())));
  }

  @Override public Tensor forward(Tensor x) {
    var m = children();
    Tensor h = attn().forwardAdd(m.get("ln_1").forward(x), x);
    return mlpAdd(m.get("ln_2").forward(h), h);
  }

  /** residual + mlp(x); mlp's c_proj adds the residual in its GEMM when its dropout is the identity and it is a plain Linear. */
  private Tensor mlpAdd(Tensor x, Tensor residual) {
    Module mlp = children().get("mlp");
    var c = mlp.children();
    if (c.get("dropout") instanceof Dropout d && d.isIdentity() && c.get("c_proj") instanceof Linear proj && c.size() == 4)
      return proj.forwardAdd(Layers.linearThen(c.get("c_fc"), c.get("gelu"), x), residual);
    return Arith.add(residual, mlp.forward(x));
  }


  public CausalSelfAttention attn() { return (CausalSelfAttention) children().get("attn"); }

  /** mlp.c_fc, while still a plain Linear. */
  public Linear mlpFc() { return Layers.linear(children().get("mlp"), "c_fc"); }

  /** mlp.c_proj, while still a plain Linear. */
  public Linear mlpProj() { return Layers.linear(children().get("mlp"), "c_proj"); }
}
