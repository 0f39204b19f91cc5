package io.colossal4j.nn;

import io.colossal4j.backend.Backend;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Rng;

/**
 * What building a module needs, passed explicitly: the backend its parameters live on, their dtype, the
 * stream that initialises them (consumed in construction order, so the same seed gives the same model),
 * and the stream from which run-time randomness (dropout) is forked, one child stream per module.
 */
public final class ModuleContext {
  private final Backend backend;
  private final DType dtype;
  private final Rng init;
  private final Rng runtime;
  private long forks;

  public ModuleContext(Backend backend, DType dtype, long seed) {
    this.backend = backend;
    this.dtype = dtype;
    Rng root = new Rng(seed);
    this.init = root.fork("init");
    this.runtime = root.fork("runtime");
  }

  public static ModuleContext of(Backend backend, long seed) { return new ModuleContext(backend, DType.F32, seed); }

  public Backend backend() { return backend; }

  public DType dtype() { return dtype; }

  /** The initialisation stream (shared; each initialiser advances it). */
  public Rng initRng() { return init; }

  /** A fresh run-time stream for one module. */
  public Rng runtimeRng() { return runtime.fork(forks++); }
}
