package io.colossal4j.backend;

import io.colossal4j.tensor.Storage;
import java.util.ArrayList;
import java.util.List;

/**
 * The storages one open step owns: activations and temporaries the step's thread allocated while the step
 * was open, in allocation order. It is the step's half of deterministic memory release (the other half is
 * the hold count of {@link Storage}, driven by autograd):
 * <ul>
 *   <li>{@link #close} releases every storage still live when the step ends: nothing allocated in a step
 *       outlives it, whatever Java references remain, and no garbage collection is involved;</li>
 *   <li>{@link #releaseUnheldSince} releases, at the end of a region that is known to be a pure function of
 *       its inputs (one backward rule), the storages allocated inside it that nobody holds: the region's
 *       temporaries.</li>
 * </ul>
 * Release order is stream order: on a GPU every kernel that used a storage was queued before its release,
 * and the allocator hands the block to a later allocation on the same stream, so no synchronisation is needed.
 *
 * <p>Counts ({@link #stats}) let tests and benchmarks check that memory really comes back early. Used by the
 * step's thread only.
 */
public final class StepLedger {
  /** Storages the step allocated, how many were released before the step ended, and how many at its end. */
  public record Stats(long allocated, long releasedEarly, long releasedAtClose) {}

  private final List<Storage> owned = new ArrayList<>();
  private long allocated;
  private long releasedAtClose;
  private MemoryTrace trace;
  private String region = "step";

  /** Takes ownership of a storage allocated by the step's thread inside the step. */
  public void add(Storage s) {
    s.markStepOwned();
    owned.add(s);
    allocated++;
    if (trace != null) trace.allocated(s, region);
  }

  // ---------------------------------------------------------------- attribution (optional, for diagnostics)

  /** Reports this step's allocations, outputs and saved tensors to {@code t} from now on (null: stop). */
  public void attach(MemoryTrace t) { trace = t; }

  /** What the step is running, for attribution: a model unit's name in forward, "backward " + unit in backward. */
  public String region() { return region; }

  /** Sets the region name; returns the previous one, to pass back when the region ends. */
  public String enterRegion(String name) {
    String previous = region;
    region = name;
    return previous;
  }

  /** An allocation of the step's thread that the step does not own (a gradient, optimizer state): traced only. */
  public void observe(Storage s) { if (trace != null) trace.allocated(s, region); }

  /** Autograd recorded {@code out} as the output of {@code op}. */
  public void produced(Storage out, String op) { if (trace != null) trace.produced(out, op); }

  /** Autograd node {@code op} saved {@code storages} for its backward. */
  public void saved(String op, Storage[] storages) { if (trace != null) trace.saved(op, storages); }

  /** A position to pass to {@link #releaseUnheldSince}. */
  public int mark() { return owned.size(); }

  /**
   * Releases the storages added since {@code mark} that are neither held nor already released; returns how
   * many. The caller guarantees that no unheld storage of the region is referenced after it (the region's
   * results were held before this call).
   */
  public int releaseUnheldSince(int mark) {
    int n = 0;
    for (int i = mark; i < owned.size(); i++) {
      Storage s = owned.get(i);
      if (!s.isReleased() && s.holds() == 0) {
        s.release();
        n++;
      }
    }
    // the released tail no longer needs tracking: drop it so long backward passes keep the list short
    if (n > 0) owned.subList(mark, owned.size()).removeIf(Storage::isReleased);
    return n;
  }

  /** Storages added and not yet released. */
  public long live() {
    long n = 0;
    for (Storage s : owned) if (!s.isReleased()) n++;
    return n;
  }

  public Stats stats() { return new Stats(allocated, allocated - releasedAtClose - live(), releasedAtClose); }

  /** Ends the step: every storage it still owns is released. */
  public void close() {
    for (Storage s : owned) {
      if (!s.isReleased()) {
        s.release();
        releasedAtClose++;
      }
    }
    owned.clear();
  }
}
