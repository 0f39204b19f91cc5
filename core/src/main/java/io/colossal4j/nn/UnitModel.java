package io.colossal4j.nn;

import io.colossal4j.backend.StepLedger;
import io.colossal4j.tensor.Tensor;
import java.util.List;

/**
 * A model whose forward is an ordered list of named units that includes every operation, so any split
 * point between units is a valid pipeline boundary (nothing lives between units) and stages can be
 * composed from the list without reading model code.
 *
 * <p>Memory: inside a step ({@code Backend.openStep}) each unit runs as a release region of the step's
 * ledger. A unit is a function of its input, so what it allocated is needed afterwards only if it is part of
 * its output or saved for backward by an autograd node (which holds it); everything else (the product
 * before a residual add, temporaries of composite ops, all intermediates under no-grad) goes back to the
 * allocator as soon as the unit returns, instead of when the step ends; and a unit's output that no node saved
 * goes back once the next unit has returned. A unit that kept a tensor in a field for a later unit would break
 * this contract: the use fails loudly on the released storage.
 */
public abstract class UnitModel extends Module {
  /** The forward, as units; running them in order equals {@link #forward}. */
  public abstract List<Unit> units();

  @Override public Tensor forward(Tensor x) {
    Tensor h = x;
    StepLedger ledger = x.backend().activeStep();
    for (Unit u : units()) {
      int mark = ledger == null ? 0 : ledger.mark();
      String region = ledger == null ? null : ledger.enterRegion(u.name());
      Tensor in = h;
      h = u.module().forward(h);
      if (ledger != null) {
        release(ledger, mark, h);
        if (in != x) releaseConsumed(in, h);
        ledger.enterRegion(region);
      }
    }
    return h;
  }

  /**
   * Releases the previous unit's output once the next unit has consumed it, unless a backward node saved it
   * (held) or the new output shares its storage (a view): only the next unit reads a unit's output, so nobody
   * can read it any more. Without this, an unsaved unit output (a patch embedding's convolution output, an f32
   * final norm that the head casts under autocast) would stay until the step ends, through the whole backward.
   */
  private static void releaseConsumed(Tensor in, Tensor out) {
    var s = in.storage();
    if (s != out.storage() && s.stepOwned() && s.holds() == 0 && !s.isReleased()) s.release();
  }

  /** Releases the unit's unheld allocations, keeping its output. */
  private static void release(StepLedger ledger, int mark, Tensor out) {
    out.storage().hold();
    ledger.releaseUnheldSince(mark);
    out.storage().unholdKeep();
  }
}
