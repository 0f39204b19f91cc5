package io.colossal4j.models.resnet;

import io.colossal4j.nn.BatchNorm2d;
import io.colossal4j.nn.Conv2d;
import io.colossal4j.nn.Init;
import io.colossal4j.nn.Module;
import io.colossal4j.nn.ModuleContext;
import io.colossal4j.nn.Sequential;
import io.colossal4j.ops.Arith;
import io.colossal4j.tensor.Tensor;

/**
 * BasicBlock (two 3×3 convs) or Bottleneck (1×1, 3×3 with the stride, 1×1 ×4), each conv followed by batch
 * norm, ReLU after the residual add; a 1×1 conv + BN {@code downsample} when shape changes.
 */
final class ResidualBlock extends Module {
  private final boolean bottleneck;
  private final Module downsample;

  ResidualBlock(ModuleContext ctx, boolean bottleneck, int in, int width, int stride) {
    this.bottleneck = bottleneck;
    int out = bottleneck ? width * 4 : width;
    if (bottleneck) {
      conv(ctx, "conv1", in, width, 1, 1);
      child("bn1", new BatchNorm2d(ctx, width));
      conv(ctx, "conv2", width, width, 3, stride);
      child("bn2", new BatchNorm2d(ctx, width));
      conv(ctx, "conv3", width, out, 1, 1);
      child("bn3", new BatchNorm2d(ctx, out).zeroInit());
    } else {
      conv(ctx, "conv1", in, width, 3, stride);
      child("bn1", new BatchNorm2d(ctx, width));
      conv(ctx, "conv2", width, out, 3, 1);
      child("bn2", new BatchNorm2d(ctx, out).zeroInit());
    }
    this.downsample = stride != 1 || in != out
        ? child("downsample", new Sequential().add("0", convModule(ctx, in, out, 1, stride)).add("1", new BatchNorm2d(ctx, out)))
        : null;
  }

  private void conv(ModuleContext ctx, String name, int in, int out, int k, int stride) {
    child(name, convModule(ctx, in, out, k, stride));
  }

  /** Conv without bias, kaiming-normal (fan_out, ReLU) as torchvision/timm initialise ResNets. */
  static Conv2d convModule(ModuleContext ctx, int in, int out, int k, int stride) {
    Conv2d c = new Conv2d(ctx, in, out, k, stride, k / 2, 1, 1, false);
    c.weight().backend().kernels().copy(Init.kaimingNormalFanOut(ctx, out, in, k, k), c.weight());
    return c;
  }

  @Override public Tensor forward(Tensor x) {
    var c = children();
    Tensor h = Arith.relu(c.get("bn1").forward(c.get("conv1").forward(x)));
    if (bottleneck) {
      h = Arith.relu(c.get("bn2").forward(c.get("conv2").forward(h)));
      h = c.get("bn3").forward(c.get("conv3").forward(h));
    } else {
      h = c.get("bn2").forward(c.get("conv2").forward(h));
    }
    Tensor shortcut = downsample == null ? x : downsample.forward(x);
    return Arith.relu(Arith.add(h, shortcut));
  }
}
