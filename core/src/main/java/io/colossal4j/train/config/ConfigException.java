package io.colossal4j.train.config;

/**
 * A configuration that cannot be used. {@code key} is the dotted key path the problem is at (empty for the
 * whole document); the message names the value and what would be valid. Records throw it with their own key
 * names; the binder prefixes the path of the section, so the final message reads
 * {@code train.global_batch_size = 0: must be an integer >= 1}.
 */
public class ConfigException extends RuntimeException {
  private final String key;
  private final String detail;

  public ConfigException(String key, String detail) {
    super(key.isEmpty() ? detail : key + ": " + detail);
    this.key = key;
    this.detail = detail;
  }

  /** A value out of range: {@code key = value: must be <valid>}. */
  public static ConfigException invalid(String key, Object value, String valid) {
    return new ConfigException(key, "got " + show(value) + "; valid: " + valid);
  }

  public String key() { return key; }

  public String detail() { return detail; }

  /** The same problem seen from the enclosing section {@code prefix}. */
  public ConfigException under(String prefix) {
    if (prefix.isEmpty()) return this;
    ConfigException e = new ConfigException(key.isEmpty() ? prefix : prefix + "." + key, detail);
    e.setStackTrace(getStackTrace());
    return e;
  }

  static String show(Object v) {
    return v instanceof String s ? "'" + s + "'" : String.valueOf(v);
  }

  // ------------------------------------------------------------ checks used by the records' constructors

  static void atLeast(String key, long value, long min) {
    if (value < min) throw invalid(key, value, "an integer >= " + min);
  }

  static void atLeast(String key, double value, double min) {
    if (!(value >= min)) throw invalid(key, value, "a number >= " + min);
  }

  static void inRange(String key, double value, double lo, double hi) {
    if (!(value >= lo && value <= hi)) throw invalid(key, value, "a number in [" + lo + ", " + hi + "]");
  }

  static void positive(String key, double value) {
    if (!(value > 0) || Double.isInfinite(value)) throw invalid(key, value, "a finite number > 0");
  }
}
