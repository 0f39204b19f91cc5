package io.colossal4j.backend.cuda;

import io.colossal4j.backend.OpLabel;
import io.colossal4j.backend.cuda.ffi.Driver;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Where a stretch of GPU work spends its time, per (op label, kernel): a pair of timing events around every
 * kernel, GEMM and device copy the backend queues while profiling, plus the host time between launches.
 * From the events it derives each entry's GPU time, and the GPU's idle time just before it (the device
 * waiting for the host to queue that work: launch-bound stretches show up there); from the host clock, the
 * Java time spent since the previous launch (op logic, allocation, autograd bookkeeping) and in the launch
 * call itself. Labels come from {@link OpLabel} (the autograd rule running, or "forward").
 *
 * <p>Costs two event records per launch (a few microseconds of host time each), so profiled steps run a
 * little slower than plain ones; the GPU times are not affected. Events are created once and reused across
 * profiles. Used by the backend's one submitting thread at a time (the backend is single-stream).
 */
final class CudaProfiler {
  /** One (label, kernel) entry of a report; times in milliseconds, summed over its {@code count} launches. */
  record Row(String label, String kernel, int count, double gpuMs, double idleBeforeMs, double hostMs) {}

  /** A finished profile: rows by GPU time, and the totals between the first and the last event. */
  record Report(List<Row> rows, double wallMs, double busyMs, double idleMs, double hostMs, int launches) {
    /** A table of the {@code top} entries by GPU time, then the entries that made the GPU wait longest. */
    String format(int top) {
      StringBuilder b = new StringBuilder();
      b.append(String.format(Locale.ROOT, "GPU time %.1f ms of %.1f ms between the first and last launch (idle %.1f ms, %.0f%%); "
          + "%d launches; host %.1f ms in launches and between them%n", busyMs, wallMs, idleMs, 100 * idleMs / Math.max(wallMs, 1e-9), launches, hostMs));
      b.append(String.format(Locale.ROOT, "%-34s %-44s %6s %9s %9s %9s%n", "label", "kernel", "count", "gpu ms", "idle ms", "host ms"));
      List<Row> byGpu = rows.stream().sorted(Comparator.comparingDouble(Row::gpuMs).reversed()).limit(top).toList();
      for (Row r : byGpu) line(b, r);
      b.append("-- most GPU idle before:\n");
      List<Row> byIdle = rows.stream().sorted(Comparator.comparingDouble(Row::idleBeforeMs).reversed()).limit(Math.max(top / 2, 5)).toList();
      for (Row r : byIdle) line(b, r);
      return b.toString();
    }

    private static void line(StringBuilder b, Row r) {
      b.append(String.format(Locale.ROOT, "%-34s %-44s %6d %9.2f %9.2f %9.2f%n", clip(r.label, 34), clip(r.kernel, 44), r.count, r.gpuMs, r.idleBeforeMs, r.hostMs));
    }

    private static String clip(String s, int n) { return s.length() <= n ? s : s.substring(0, n - 1) + "~"; }
  }

  private record Mark(String label, String kernel, long start, long end, long hostNanos) {}

  private final Driver driver;
  private final long stream;
  private final List<long[]> pool = new ArrayList<>();
  private final List<Mark> marks = new ArrayList<>();
  private long lastHostEnd;
  private String pendingLabel, pendingKernel;
  private long pendingHostStart;

  CudaProfiler(Driver driver, long stream) {
    this.driver = driver;
    this.stream = stream;
  }

  /** Starts a profile: clears the previous marks (the events are kept for reuse). */
  void start() {
    marks.clear();
    lastHostEnd = System.nanoTime();
  }

  /** Records the start of one launch of {@code kernel}. */
  void begin(String kernel) {
    long now = System.nanoTime();
    long[] ev = events(marks.size());
    driver.eventRecord(ev[0], stream);
    pendingLabel = OpLabel.current();
    pendingKernel = kernel;
    pendingHostStart = lastHostEnd;
    if (now < pendingHostStart) pendingHostStart = now;
  }

  /** Records the end of the launch begun last. */
  void end() {
    long[] ev = events(marks.size());
    driver.eventRecord(ev[1], stream);
    long now = System.nanoTime();
    marks.add(new Mark(pendingLabel, pendingKernel, ev[0], ev[1], now - pendingHostStart));
    lastHostEnd = now;
  }

  private long[] events(int i) {
    while (pool.size() <= i) pool.add(new long[] {driver.eventCreate(), driver.eventCreate()});
    return pool.get(i);
  }

  /** Waits for the profiled work and sums it per (label, kernel). */
  Report finish() {
    driver.streamSynchronize(stream);
    Map<String, double[]> sums = new LinkedHashMap<>();
    Map<String, String[]> names = new LinkedHashMap<>();
    double busy = 0, idle = 0, host = 0;
    for (int i = 0; i < marks.size(); i++) {
      Mark m = marks.get(i);
      double gpu = driver.elapsedMillis(m.start, m.end);
      double gap = i == 0 ? 0 : Math.max(0, driver.elapsedMillis(marks.get(i - 1).end, m.start));
      String key = m.label + "\u0000" + m.kernel;
      names.putIfAbsent(key, new String[] {m.label, m.kernel});
      double[] s = sums.computeIfAbsent(key, k -> new double[4]);
      s[0]++;
      s[1] += gpu;
      s[2] += gap;
      s[3] += m.hostNanos / 1e6;
      busy += gpu;
      idle += gap;
      host += m.hostNanos / 1e6;
    }
    double wall = marks.isEmpty() ? 0 : driver.elapsedMillis(marks.getFirst().start, marks.getLast().end);
    List<Row> rows = new ArrayList<>();
    for (var e : sums.entrySet()) {
      String[] n = names.get(e.getKey());
      double[] s = e.getValue();
      rows.add(new Row(n[0], n[1], (int) s[0], s[1], s[2], s[3]));
    }
    return new Report(rows, wall, busy, idle, host, marks.size());
  }

  /** Destroys the pooled events. */
  void close() {
    for (long[] ev : pool) {
      driver.eventDestroy(ev[0]);
      driver.eventDestroy(ev[1]);
    }
    pool.clear();
  }
}
