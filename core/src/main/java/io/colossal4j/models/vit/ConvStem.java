package io.colossal4j.models.vit;

import io.colossal4j.nn.BatchNorm2d;
import io.colossal4j.nn.Conv2d;
import io.colossal4j.nn.Module;
import io.colossal4j.nn.ModuleContext;
import io.colossal4j.ops.Arith;
import io.colossal4j.ops.Views;
import io.colossal4j.tensor.Tensor;

/**
 * A convolutional patch embedding (Xiao et al. 2021, "Early convolutions help transformers see better"):
 * three 3×3 stride-2 convolutions with batch norm and ReLU instead of one patch-sized convolution, so an image
 * of size S becomes ceil(S/8)² tokens. It gives a ViT the locality prior that makes it learn quickly on small
 * data sets; the transformer after it is unchanged. Image [B, C, S, S] → tokens [B, N, D].
 */
public final class ConvStem extends Module {
  public ConvStem(ModuleContext ctx, int inChannels, int dim) {
    int w = Math.max(8, dim / 2);
    child("conv1", new Conv2d(ctx, inChannels, w / 2, 3, 2, 1, 1, 1, false));
    child("bn1", new BatchNorm2d(ctx, w / 2));
    child("conv2", new Conv2d(ctx, w / 2, w, 3, 2, 1, 1, 1, false));
    child("bn2", new BatchNorm2d(ctx, w));
    child("proj", new Conv2d(ctx, w, dim, 3, 2, 1, 1, 1, true));
  }

  /** Tokens for an image of side {@code size}: three halvings, rounding up. */
  public static int tokens(int size) {
    int s = size;
    for (int i = 0; i < 3; i++) s = (s + 1) / 2;
    return s * s;
  }

  @Override public Tensor forward(Tensor x) {
    var c = children();
    Tensor h = Arith.relu(c.get("bn1").forward(c.get("conv1").forward(x)));
    h = Arith.relu(c.get("bn2").forward(c.get("conv2").forward(h)));
    Tensor y = c.get("proj").forward(h);
    return Views.transpose(Views.flatten(y, 2, 3), 1, 2);
  }
}
