package io.colossal4j.models.vit;

import io.colossal4j.nn.Fn;
import io.colossal4j.nn.Init;
import io.colossal4j.nn.LayerNorm;
import io.colossal4j.nn.Linear;
import io.colossal4j.nn.ModuleContext;
import io.colossal4j.nn.Sequential;
import io.colossal4j.nn.Unit;
import io.colossal4j.nn.UnitModel;
import io.colossal4j.ops.Reduce;
import io.colossal4j.ops.Views;
import java.util.ArrayList;
import java.util.List;

/**
 * Vision Transformer (Dosovitskiy et al. 2021) with timm's parameter names. Units:
 * patch_embed, pos_embed, [norm_pre], blocks.0 … blocks.{depth-1}, norm, pool, head.
 */
public final class VisionTransformer extends UnitModel {
  private final ViTConfig config;
  private final List<Unit> units = new ArrayList<>();

  public VisionTransformer(ModuleContext ctx, ViTConfig c) {
    this.config = c;
    var embed = c.embedding() == ViTConfig.Embedding.CONV_STEM ? new ConvStem(ctx, c.inChannels(), c.embedDim())
        : new PatchEmbed(ctx, c.imageSize(), c.patchSize(), c.inChannels(), c.embedDim(), !c.preNorm());
    units.add(new Unit("patch_embed", "patch_embed.", child("patch_embed", embed)));
    units.add(new Unit("pos_embed", "", inlineChild("pos_embed", new TokenEmbed(ctx, c.numPatches(), c.embedDim(), c.dropRate()))));
    if (c.preNorm()) units.add(new Unit("norm_pre", "norm_pre.", child("norm_pre", new LayerNorm(ctx, c.embedDim(), c.eps(), false))));
    List<Block> blocks = new ArrayList<>();
    for (int i = 0; i < c.depth(); i++) {
      double dpr = c.depth() == 1 ? 0 : c.dropPathRate() * i / (c.depth() - 1);  // linearly increasing stochastic depth
      blocks.add(new Block(ctx, c.embedDim(), c.numHeads(), c.mlpHidden(), c.qkvBias(), c.dropRate(), dpr, c.eps()));
    }
    units.addAll(child("blocks", Sequential.of(blocks)).units("blocks."));
    units.add(new Unit("norm", "norm.", child("norm", new LayerNorm(ctx, c.embedDim(), c.eps(), false))));
    Fn pool = c.pool() == ViTConfig.Pool.TOKEN
        ? new Fn("class token", x -> Views.select(x, 1, 0))
        : new Fn("mean of patch tokens", x -> Reduce.mean(Views.narrow(x, 1, 1, x.size(1) - 1), false, 1));
    units.add(new Unit("pool", "pool.", child("pool", pool)));
    Linear head = child("head", new Linear(ctx, c.embedDim(), c.numClasses(), true));
    units.add(new Unit("head", "head.", head));
    initWeights(ctx, head);
  }

  /** timm's init: trunc-normal(.02) linear weights, zero biases (the patch conv keeps its default init). */
  private void initWeights(ModuleContext ctx, Linear head) {
    namedParameters().forEach((name, p) -> {
      boolean linearWeight = p.rank() == 2 && name.endsWith(".weight");
      if (linearWeight) p.backend().kernels().copy(Init.truncNormal(ctx, 0.02, p.shape().toArray()), p);
      else if (name.endsWith(".bias") && !name.startsWith("patch_embed")) p.backend().kernels().fill(p, 0);
    });
  }

  public ViTConfig config() { return config; }

  /** The transformer blocks, in order. */
  public List<Block> blocks() {
    List<Block> out = new ArrayList<>();
    for (var m : children().get("blocks").children().values()) out.add((Block) m);
    return out;
  }

  @Override public List<Unit> units() { return units; }
}
