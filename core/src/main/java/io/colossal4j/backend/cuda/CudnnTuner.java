package io.colossal4j.backend.cuda;

import io.colossal4j.backend.cuda.ffi.CudaException;
import io.colossal4j.backend.cuda.ffi.Driver;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.function.IntConsumer;

/**
 * Times candidate execution plans on the problem's own buffers and says which was fastest, the way
 * {@code CudaMatmul.fastest} does for cuBLASLt algorithms: per candidate one untimed warm-up run (which also
 * loads its kernels), then three runs each between two CUDA events on the backend's stream, and the median.
 * Candidates run one after another and each is waited for, so no two overlap and none is in flight afterwards.
 */
final class CudnnTuner {
  private CudnnTuner() {}

  private static final int TIMED_RUNS = 3;

  /** One candidate's result: its engine tag, workspace bytes and median milliseconds (NaN: it failed to run, {@code error} says why). */
  record Timing(String engine, long workspaceBytes, double ms, String error) {
    boolean ran() { return !Double.isNaN(ms); }

    String describe() {
      return ran() ? String.format(Locale.ROOT, "%s %.3f ms%s", engine, ms, workspaceBytes > 0 ? " (ws " + mib(workspaceBytes) + ")" : "")
          : engine + " failed: " + error;
    }
  }

  /**
   * One plan key's choice: the key's readable label, the engine kept, every candidate's timing (empty: none was
   * timed), the knob ranges its engines offer where they were explored ("" otherwise), and the host milliseconds
   * spent building the candidates' plans (heuristics, finalization, any kernel compilation).
   */
  record Choice(String label, String engine, List<Timing> timings, String knobRanges, double buildMs) {
    String describe() {
      StringBuilder s = new StringBuilder(label).append(": ").append(engine);
      s.append(String.format(Locale.ROOT, " [built in %.0f ms]", buildMs));
      if (timings.isEmpty()) s.append(" (only candidate, untimed)");
      else {
        s.append(" (fastest of ").append(timings.size()).append(':');
        for (Timing t : timings) s.append(' ').append(t.describe()).append(';');
        s.append(')');
      }
      return knobRanges.isEmpty() ? s.toString() : s.append(" [knobs ").append(knobRanges).append(']').toString();
    }
  }

  static String mib(long bytes) { return String.format(Locale.ROOT, "%.1f MiB", bytes / 1048576.0); }

  /**
   * Times {@code engines.size()} candidates; {@code run.accept(i)} queues candidate i once on {@code stream}.
   * A candidate whose run throws a {@link CudaException} (cuDNN refusing it at execution) gets a NaN time and is
   * never chosen. Returns the timings in candidate order.
   */
  static List<Timing> time(Driver d, long stream, List<String> engines, long[] workspaceBytes, IntConsumer run) {
    List<Timing> out = new ArrayList<>();
    long start = d.eventCreate(), end = d.eventCreate();
    try {
      for (int i = 0; i < engines.size(); i++) {
        float[] ms = new float[TIMED_RUNS];
        try {
          run.accept(i);
          for (int r = 0; r < ms.length; r++) {
            d.eventRecord(start, stream);
            run.accept(i);
            d.eventRecord(end, stream);
            d.eventSynchronize(end);
            ms[r] = d.elapsedMillis(start, end);
          }
        } catch (CudaException e) {
          d.streamSynchronize(stream);   // whatever of it was queued has finished before the next candidate
          out.add(new Timing(engines.get(i), workspaceBytes[i], Double.NaN, e.getMessage()));
          continue;
        }
        Arrays.sort(ms);
        out.add(new Timing(engines.get(i), workspaceBytes[i], ms[TIMED_RUNS / 2], null));
      }
    } finally {
      d.eventDestroy(start);
      d.eventDestroy(end);
    }
    return out;
  }

  /** Index of the fastest candidate that ran, or -1 when none did. */
  static int fastest(List<Timing> timings) {
    int best = -1;
    for (int i = 0; i < timings.size(); i++)
      if (timings.get(i).ran() && (best < 0 || timings.get(i).ms() < timings.get(best).ms())) best = i;
    return best;
  }
}
