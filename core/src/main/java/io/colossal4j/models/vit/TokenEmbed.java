package io.colossal4j.models.vit;

import io.colossal4j.nn.Dropout;
import io.colossal4j.nn.Init;
import io.colossal4j.nn.Module;
import io.colossal4j.nn.ModuleContext;
import io.colossal4j.ops.Arith;
import io.colossal4j.ops.Views;
import io.colossal4j.tensor.Tensor;

/**
 * Prepends the class token and adds the position embedding (timm's _pos_embed). Registered inline, so its
 * parameters keep timm's top-level names {@code cls_token} and {@code pos_embed}.
 */
public final class TokenEmbed extends Module {
  private final Tensor clsToken;
  private final Tensor posEmbed;
  private final Dropout drop;

  public TokenEmbed(ModuleContext ctx, int numPatches, int dim, double dropRate) {
    this.clsToken = parameter("cls_token", Init.truncNormal(ctx, 1e-6, 1, 1, dim));
    this.posEmbed = parameter("pos_embed", Init.truncNormal(ctx, 0.02, 1, numPatches + 1, dim));
    this.drop = child("pos_drop", new Dropout(ctx, dropRate));
  }

  @Override public Tensor forward(Tensor x) {
    Tensor cls = Views.expand(clsToken, x.size(0), 1, x.size(2));
    return drop.forward(Arith.add(Views.cat(1, cls, x), posEmbed));
  }
}
