package io.colossal4j.distributed;

/** A named axis of the device mesh: data, pipeline, tensor parallelism, with room for sequence and expert. */
public enum MeshAxis {
  PP("pp"), DP("dp"), EP("ep"), SP("sp"), TP("tp");

  private final String label;

  MeshAxis(String label) { this.label = label; }

  /** The short name used in messages and group names ({@code tp}). */
  public String label() { return label; }
}
