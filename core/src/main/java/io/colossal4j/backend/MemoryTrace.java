package io.colossal4j.backend;

import io.colossal4j.tensor.MemoryCategory;
import io.colossal4j.tensor.Storage;
import java.util.ArrayList;
import java.util.Collection;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Function;

/**
 * Memory attribution for one step: which storages are alive at the step's peak, how many bytes each, of
 * which category, allocated in which region (a model unit in forward, "backward unit" in backward) by which
 * op, and which autograd nodes saved them for backward. Attached to an open step with
 * {@link StepLedger#attach}; the ledger reports every allocation its thread makes while the step is open (the
 * step-owned activations and temporaries, and the gradients and optimizer state allocated meanwhile), the
 * op that produced each recorded output and the storages each node saved.
 *
 * <p>Bytes are the ones requested ({@link Storage#byteSize()}), without any allocator's rounding: what
 * PyTorch's {@code max_memory_allocated} counts (up to its 512-byte rounding), so a trace can be compared
 * exactly with an analytic list of what PyTorch's autograd saves.
 *
 * <p>Cost: every allocation scans the storages still live (releases are seen lazily, through
 * {@link Storage#isReleased}), and a new peak copies them: quadratic in a step's live storages, for
 * diagnostics and tests on small models, never for a timed step. One thread (the step's).
 */
public final class MemoryTrace {
  /** One storage alive at the peak. {@code producer} is the op whose output it is ("" for a temporary or a buffer). */
  public record Entry(long bytes, MemoryCategory category, String region, String label, String producer, List<String> savedBy) {
    /** "region / producer-or-label", the usual key of a breakdown. */
    public String where() { return region + " / " + (producer.isEmpty() ? label : producer); }
  }

  private static final class Live {
    final Storage storage;
    final String region;
    final String label;
    String producer = "";
    final List<String> savedBy = new ArrayList<>(1);

    Live(Storage storage, String region, String label) {
      this.storage = storage;
      this.region = region;
      this.label = label;
    }

    Entry entry() { return new Entry(storage.byteSize(), storage.category(), region, label, producer, List.copyOf(savedBy)); }
  }

  /** The region of storages alive before the step (see the constructor). */
  public static final String RESIDENT = "resident";

  private final Map<Storage, Live> live = new IdentityHashMap<>();
  private long peakBytes;
  private List<Entry> atPeak = List.of();
  private String peakWhere = "";

  /** A trace that counts {@code resident} (parameters, gradients, optimizer state alive before the step) as live until released. */
  public MemoryTrace(Collection<Storage> resident) {
    for (Storage s : resident) if (!s.isReleased()) live.putIfAbsent(s, new Live(s, RESIDENT, s.category().name().toLowerCase()));
  }

  /** Called by the ledger for each allocation of the step's thread; may set a new peak. */
  void allocated(Storage s, String region) {
    live.put(s, new Live(s, region, OpLabel.current()));
    long bytes = 0;
    var it = live.values().iterator();
    while (it.hasNext()) {
      Live l = it.next();
      if (l.storage.isReleased()) it.remove();
      else bytes += l.storage.byteSize();
    }
    if (bytes > peakBytes) {
      peakBytes = bytes;
      peakWhere = region + " / " + OpLabel.current();
      List<Entry> snap = new ArrayList<>(live.size());
      for (Live l : live.values()) snap.add(l.entry());
      atPeak = snap;
    }
  }

  /** Called by the ledger when an op records {@code out} as its output (the first op to do so names it). */
  void produced(Storage out, String op) {
    Live l = live.get(out);
    if (l != null && l.producer.isEmpty() && !l.region.equals(RESIDENT)) l.producer = op;   // a view of a parameter stays "parameter"
  }

  /** Called by the ledger when a node named {@code op} saves {@code storages} for its backward. */
  void saved(String op, Storage[] storages) {
    for (Storage s : storages) {
      Live l = live.get(s);
      if (l != null) l.savedBy.add(op);
    }
  }

  /** Every traced storage live now (for a snapshot at a chosen point, e.g. when backward starts). */
  public List<Entry> liveNow() {
    List<Entry> out = new ArrayList<>(live.size());
    for (Live l : live.values()) if (!l.storage.isReleased()) out.add(l.entry());
    return out;
  }

  /** The most bytes live at once (resident included), requested sizes. */
  public long peakBytes() { return peakBytes; }

  /** The region and label of the allocation that reached the peak. */
  public String peakWhere() { return peakWhere; }

  /** Every storage live at the peak, in no particular order. */
  public List<Entry> atPeak() { return atPeak; }

  /** Bytes live at the peak summed by {@code key} (sorted by key). */
  public Map<String, Long> bytesBy(Function<Entry, String> key) {
    Map<String, Long> out = new TreeMap<>();
    for (Entry e : atPeak) out.merge(key.apply(e), e.bytes(), Long::sum);
    return out;
  }

  /** Bytes live at the peak whose region is {@code region}. */
  public long bytesIn(String region) {
    long n = 0;
    for (Entry e : atPeak) if (e.region().equals(region)) n += e.bytes();
    return n;
  }

  /** {@link #describe(int)} with every row. */
  public String describe() { return describe(Integer.MAX_VALUE); }

  /** A table for humans: the peak, then bytes by category and the {@code rows} largest groups by region, producer and savers. */
  public String describe(int rows) {
    StringBuilder sb = new StringBuilder(String.format("peak %,d bytes (%s), reached at %s%n", peakBytes, MemoryStats.human(peakBytes), peakWhere));
    bytesBy(e -> e.category().name().toLowerCase()).forEach((k, v) -> sb.append(String.format("  %-20s %,14d%n", k, v)));
    Map<String, Long> by = bytesBy(e -> e.where() + (e.savedBy().isEmpty() ? "" : "  saved by " + String.join(",", e.savedBy())));
    by.entrySet().stream().sorted(Map.Entry.<String, Long>comparingByValue().reversed()).limit(rows)
        .forEach(en -> sb.append(String.format("  %,14d  %s%n", en.getValue(), en.getKey())));
    return sb.toString();
  }
}
