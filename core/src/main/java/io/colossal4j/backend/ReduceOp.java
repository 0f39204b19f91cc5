package io.colossal4j.backend;

/** Reductions over a set of dims. ARGMAX/ARGMIN reduce exactly one dim and write i64 indices. */
public enum ReduceOp { SUM, MEAN, MAX, MIN, PROD, ARGMAX, ARGMIN }
