package io.colossal4j.nn;

import io.colossal4j.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;

/** Named children run in order ({@code blocks.0}, {@code blocks.1}, ... when built with {@link #of}). */
public final class Sequential extends Module {
  public Sequential() {}

  /** Children named 0, 1, 2, ... as PyTorch's nn.Sequential / ModuleList. */
  public static Sequential of(List<? extends Module> modules) {
    Sequential s = new Sequential();
    for (int i = 0; i < modules.size(); i++) s.add(Integer.toString(i), modules.get(i));
    return s;
  }

  public Sequential add(String name, Module m) {
    child(name, m);
    return this;
  }

  public Module get(String name) { return children().get(name); }

  public Module get(int index) { return new ArrayList<>(children().values()).get(index); }

  public int size() { return children().size(); }

  @Override public Tensor forward(Tensor x) {
    Tensor h = x;
    for (Module m : children().values()) h = m.forward(h);
    return h;
  }

  /** This sequence's children as units named {@code prefix + childName}. */
  public List<Unit> units(String prefix) {
    List<Unit> out = new ArrayList<>();
    children().forEach((k, m) -> out.add(new Unit(prefix + k, prefix + k + ".", m)));
    return out;
  }
}
