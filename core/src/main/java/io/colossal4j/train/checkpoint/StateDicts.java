package io.colossal4j.train.checkpoint;

import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** Checks a loaded state dict against a live one and copies it in, reporting every mismatch by name. */
public final class StateDicts {
  private StateDicts() {}

  private static final int LISTED = 8;

  /**
   * Throws unless {@code loaded} has exactly the names of {@code expected} with the same shapes and dtypes. The
   * message lists the missing, unexpected and mismatched parameters (up to a few of each, with counts).
   *
   * @param what a phrase naming the source, e.g. {@code "checkpoint runs/x/step-000000100 (model vit_tiny)"}
   */
  public static void requireMatch(Map<String, Tensor> expected, Map<String, Tensor> loaded, String what) {
    Map<String, Spec> specs = new java.util.LinkedHashMap<>();
    expected.forEach((k, t) -> specs.put(k, new Spec(t.dtype(), t.shape())));
    requireSpecs(specs, loaded, what);
  }

  /** An entry's dtype and shape: what a model expects where it holds no full tensor (a sharded or staged model). */
  public record Spec(DType dtype, Shape shape) {
    @Override public String toString() { return dtype + shape.toString(); }
  }

  /** As {@link #requireMatch}, against names with their dtypes and shapes. */
  public static void requireSpecs(Map<String, Spec> expected, Map<String, Tensor> loaded, String what) {
    List<String> missing = new ArrayList<>(), unexpected = new ArrayList<>(), differ = new ArrayList<>();
    for (var e : expected.entrySet()) {
      Tensor l = loaded.get(e.getKey());
      Spec x = e.getValue();
      if (l == null) missing.add(e.getKey());
      else if (!l.shape().equals(x.shape()) || l.dtype() != x.dtype())
        differ.add(e.getKey() + " (saved " + l.dtype() + l.shape() + ", model " + x + ")");
    }
    for (String k : loaded.keySet()) if (!expected.containsKey(k)) unexpected.add(k);
    if (missing.isEmpty() && unexpected.isEmpty() && differ.isEmpty()) return;
    StringBuilder sb = new StringBuilder(what).append(" does not match this model:");
    section(sb, "missing from the checkpoint", missing);
    section(sb, "in the checkpoint but not in the model", unexpected);
    section(sb, "with another shape or dtype", differ);
    throw new CheckpointException(sb.toString());
  }

  private static void section(StringBuilder sb, String title, List<String> names) {
    if (names.isEmpty()) return;
    sb.append("\n  ").append(names.size()).append(' ').append(title).append(": ");
    sb.append(String.join(", ", names.subList(0, Math.min(LISTED, names.size()))));
    if (names.size() > LISTED) sb.append(", ... (").append(names.size() - LISTED).append(" more)");
  }

  /** Checks with {@link #requireMatch} and copies every loaded tensor into the live tensor of the same name. */
  public static void copyInto(Map<String, Tensor> target, Map<String, Tensor> loaded, String what) {
    requireMatch(target, loaded, what);
    for (var e : target.entrySet()) {
      Tensor src = loaded.get(e.getKey()), dst = e.getValue();
      try (Arena arena = Arena.ofConfined()) {
        MemorySegment host = arena.allocate(Math.max(1, src.numel() * src.dtype().byteSize()), 8);
        src.backend().copyToHost(src, host);
        dst.backend().copyFromHost(host, dst);
      }
    }
  }
}
