package io.colossal4j.backend;

import io.colossal4j.tensor.MemoryCategory;
import java.util.EnumMap;
import java.util.Map;

/** Current and peak bytes per memory category, plus what the allocator holds cached for reuse. */
public record MemoryStats(Map<MemoryCategory, Long> current, Map<MemoryCategory, Long> peak, long cachedBytes, long capBytes) {
  public MemoryStats {
    current = Map.copyOf(current);
    peak = Map.copyOf(peak);
  }

  public long totalCurrent() { return current.values().stream().mapToLong(Long::longValue).sum(); }

  public static MemoryStats empty() {
    Map<MemoryCategory, Long> z = new EnumMap<>(MemoryCategory.class);
    for (MemoryCategory c : MemoryCategory.values()) z.put(c, 0L);
    return new MemoryStats(z, z, 0, Long.MAX_VALUE);
  }

  /** One line per category: "parameters 1.2 GiB (peak 1.2 GiB)". */
  public String describe() {
    StringBuilder sb = new StringBuilder();
    for (MemoryCategory c : MemoryCategory.values())
      sb.append(String.format("  %-16s %10s (peak %s)%n", c.name().toLowerCase(), human(current.getOrDefault(c, 0L)), human(peak.getOrDefault(c, 0L))));
    sb.append(String.format("  %-16s %10s%n", "cached", human(cachedBytes)));
    return sb.toString();
  }

  public static String human(long bytes) {
    if (bytes < 1024) return bytes + " B";
    String[] units = {"KiB", "MiB", "GiB", "TiB"};
    double v = bytes;
    int u = -1;
    while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
    return String.format("%.1f %s", v, units[u]);
  }
}
