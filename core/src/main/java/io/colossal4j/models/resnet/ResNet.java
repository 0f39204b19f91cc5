package io.colossal4j.models.resnet;

import io.colossal4j.nn.Activation;
import io.colossal4j.nn.BatchNorm2d;
import io.colossal4j.nn.Fn;
import io.colossal4j.nn.Linear;
import io.colossal4j.nn.Module;
import io.colossal4j.nn.ModuleContext;
import io.colossal4j.nn.Sequential;
import io.colossal4j.nn.Unit;
import io.colossal4j.nn.UnitModel;
import io.colossal4j.ops.Conv;
import io.colossal4j.ops.Views;
import java.util.ArrayList;
import java.util.List;

/**
 * ResNet-18/50 with timm's names. Units: conv1, bn1, act1, maxpool, layer1.0 … layer4.{n-1}, global_pool, fc —
 * each residual block is a unit, so the handbook's nested split names ({@code layer1.0}) address it.
 */
public final class ResNet extends UnitModel {
  private final List<Unit> units = new ArrayList<>();

  public ResNet(ModuleContext ctx, ResNetConfig c) {
    int k = c.smallStem() ? 3 : 7;
    add("conv1", ResidualBlock.convModule(ctx, c.inChannels(), c.stemWidth(), k, c.smallStem() ? 1 : 2));
    add("bn1", new BatchNorm2d(ctx, c.stemWidth()));
    add("act1", Activation.relu());
    add("maxpool", c.smallStem() ? new Fn("identity (small stem)", x -> x) : new Fn("max pool 3x3/2", x -> Conv.maxPool2d(x, 3, 2, 1)));
    int in = c.stemWidth();
    for (int s = 0; s < 4; s++) {
      Sequential stage = new Sequential();
      for (int b = 0; b < c.layers().get(s); b++) {
        int stride = b == 0 && s > 0 ? 2 : 1;
        stage.add(Integer.toString(b), new ResidualBlock(ctx, c.bottleneck(), in, c.widths().get(s), stride));
        in = c.widths().get(s) * c.expansion();
      }
      String name = "layer" + (s + 1);
      units.addAll(child(name, stage).units(name + "."));
    }
    add("global_pool", new Fn("global average pool + flatten", x -> Views.flatten(Conv.adaptiveAvgPool2d(x, 1, 1), 1, 3)));
    add("fc", new Linear(ctx, in, c.numClasses(), true));
  }

  private void add(String name, Module m) {
    units.add(new Unit(name, name + ".", child(name, m)));
  }

  @Override public List<Unit> units() { return units; }
}
