package io.colossal4j.tensor;

/** Where a tensor's memory lives. {@code cuda:N} names a GPU by its ordinal. */
public record Device(Kind kind, int index) {
  public enum Kind { CPU, CUDA }

  private static final Device CPU = new Device(Kind.CPU, 0);

  public Device {
    if (index < 0) throw new IllegalArgumentException("device index must be >= 0, got " + index);
    if (kind == Kind.CPU && index != 0) throw new IllegalArgumentException("the CPU has one device, index 0; got cpu:" + index);
  }

  public static Device cpu() { return CPU; }

  public static Device cuda(int index) { return new Device(Kind.CUDA, index); }

  /** Parses {@code cpu}, {@code cuda}, {@code cuda:1}. */
  public static Device parse(String text) {
    String t = text.trim().toLowerCase(java.util.Locale.ROOT);
    if (t.equals("cpu")) return CPU;
    if (t.equals("cuda") || t.equals("gpu")) return cuda(0);
    if (t.startsWith("cuda:")) {
      try {
        return cuda(Integer.parseInt(t.substring(5)));
      } catch (NumberFormatException e) {
        // fall through to the message below
      }
    }
    throw new IllegalArgumentException("unknown device '" + text + "'; valid: cpu, cuda, cuda:N");
  }

  @Override public String toString() {
    return kind == Kind.CPU ? "cpu" : "cuda:" + index;
  }
}
