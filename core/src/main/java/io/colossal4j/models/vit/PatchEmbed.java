package io.colossal4j.models.vit;

import io.colossal4j.nn.Conv2d;
import io.colossal4j.nn.Module;
import io.colossal4j.nn.ModuleContext;
import io.colossal4j.ops.Views;
import io.colossal4j.tensor.Tensor;

/** Image [B, C, H, W] → patch tokens [B, N, D] by a patch-sized, patch-strided convolution (no bias in pre-norm CLIP models, as timm). */
public final class PatchEmbed extends Module {
  private final int imageSize;

  public PatchEmbed(ModuleContext ctx, int imageSize, int patch, int inChannels, int dim, boolean bias) {
    this.imageSize = imageSize;
    child("proj", new Conv2d(ctx, inChannels, dim, patch, patch, 0, 1, 1, bias));
  }

  @Override public Tensor forward(Tensor x) {
    if (x.rank() != 4 || x.size(2) != imageSize || x.size(3) != imageSize)
      throw new IllegalArgumentException("PatchEmbed expects images [B, C, " + imageSize + ", " + imageSize + "], got " + x.shape());
    Tensor y = children().get("proj").forward(x);                 // [B, D, h, w]
    return Views.transpose(Views.flatten(y, 2, 3), 1, 2);          // [B, h*w, D]
  }
}
