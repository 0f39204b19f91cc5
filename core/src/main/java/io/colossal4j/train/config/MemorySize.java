package io.colossal4j.train.config;

import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** A byte count written with a binary or decimal unit: {@code 23.3GiB}, {@code 512MiB}, {@code 2GB}, {@code 1024}. */
public record MemorySize(long bytes) {
  private static final Pattern FORMAT = Pattern.compile("\\s*([0-9]+(?:\\.[0-9]+)?)\\s*([KMGT]i?B|B)?\\s*", Pattern.CASE_INSENSITIVE);

  public MemorySize {
    if (bytes < 1) throw ConfigException.invalid("", bytes, "a size >= 1 byte");
  }

  public static MemorySize parse(String text) {
    Matcher m = FORMAT.matcher(text);
    if (!m.matches())
      throw ConfigException.invalid("", text, "a size such as 23.3GiB, 512MiB, 2GB or a number of bytes");
    double v = Double.parseDouble(m.group(1));
    String unit = m.group(2) == null ? "B" : m.group(2).toUpperCase(Locale.ROOT);
    long scale = switch (unit) {
      case "KIB" -> 1L << 10;
      case "MIB" -> 1L << 20;
      case "GIB" -> 1L << 30;
      case "TIB" -> 1L << 40;
      case "KB" -> 1_000L;
      case "MB" -> 1_000_000L;
      case "GB" -> 1_000_000_000L;
      case "TB" -> 1_000_000_000_000L;
      default -> 1L;
    };
    return new MemorySize(Math.round(v * scale));
  }

  /** The shortest spelling with a binary unit that parses back to the same byte count. */
  @Override public String toString() {
    String[] units = {"TiB", "GiB", "MiB", "KiB"};
    for (int u = 0; u < units.length; u++) {
      double v = bytes / (double) (1L << (10 * (4 - u)));
      if (v < 1) continue;
      for (int decimals = 0; decimals <= 3; decimals++) {
        String s = String.format(Locale.ROOT, "%." + decimals + "f", v) + units[u];
        if (parse(s).bytes == bytes) return s;
      }
    }
    return Long.toString(bytes);
  }
}
