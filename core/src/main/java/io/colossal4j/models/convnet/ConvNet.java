package io.colossal4j.models.convnet;

import io.colossal4j.nn.Activation;
import io.colossal4j.nn.BatchNorm2d;
import io.colossal4j.nn.Conv2d;
import io.colossal4j.nn.Fn;
import io.colossal4j.nn.Linear;
import io.colossal4j.nn.Module;
import io.colossal4j.nn.ModuleContext;
import io.colossal4j.nn.Unit;
import io.colossal4j.nn.UnitModel;
import io.colossal4j.ops.Conv;
import io.colossal4j.ops.Views;
import java.util.ArrayList;
import java.util.List;

/** A small ConvNet for 28×28 or 32×32 images: (conv3×3-BN-ReLU-maxpool)×2, flatten, fc-ReLU, fc. */
public final class ConvNet extends UnitModel {
  private final List<Unit> units = new ArrayList<>();

  public ConvNet(ModuleContext ctx, int inChannels, int imageSize, int numClasses, int width) {
    if (imageSize % 4 != 0) throw new IllegalArgumentException("ConvNet image size must be divisible by 4, got " + imageSize);
    add("conv1", new Conv2d(ctx, inChannels, width, 3, 1, 1, 1, 1, false));
    add("bn1", new BatchNorm2d(ctx, width));
    add("act1", Activation.relu());
    add("pool1", new Fn("max pool 2x2", x -> Conv.maxPool2d(x, 2, 2, 0)));
    add("conv2", new Conv2d(ctx, width, 2 * width, 3, 1, 1, 1, 1, false));
    add("bn2", new BatchNorm2d(ctx, 2 * width));
    add("act2", Activation.relu());
    add("pool2", new Fn("max pool 2x2", x -> Conv.maxPool2d(x, 2, 2, 0)));
    add("flatten", new Fn("flatten", x -> Views.flatten(x, 1, 3)));
    int feat = 2 * width * (imageSize / 4) * (imageSize / 4);
    add("fc1", new Linear(ctx, feat, 128, true));
    add("act3", Activation.relu());
    add("fc2", new Linear(ctx, 128, numClasses, true));
  }

  private void add(String name, Module m) {
    units.add(new Unit(name, name + ".", child(name, m)));
  }

  @Override public List<Unit> units() { return units; }
}
