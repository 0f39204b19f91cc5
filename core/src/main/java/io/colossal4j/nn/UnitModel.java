package io.colossal4j.nn;

import io.colossal4j.tensor.Tensor;
import java.util.List;

/**
 * A model whose forward is an ordered list of named units that includes every operation, so any split
 * point between units is a valid pipeline boundary (nothing lives between units) and stages can be
 * composed from the list without reading model code.
 */
public abstract class UnitModel extends Module {
  /** The forward, as units; running them in order equals {@link #forward}. */
  public abstract List<Unit> units();

  @Override public Tensor forward(Tensor x) {
    Tensor h = x;
    for (Unit u : units()) h = u.module().forward(h);
    return h;
  }
}
