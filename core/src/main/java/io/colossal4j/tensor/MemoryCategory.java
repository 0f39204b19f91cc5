package io.colossal4j.tensor;

/** What a block of memory holds, for per-category accounting (and for OOM reports that say what to change). */
public enum MemoryCategory { PARAMETER, GRADIENT, OPTIMIZER_STATE, ACTIVATION, TEMPORARY }
