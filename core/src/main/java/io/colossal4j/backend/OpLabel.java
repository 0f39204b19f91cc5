package io.colossal4j.backend;

/**
 * What the calling thread is computing, for profilers: the autograd engine names the backward rule it runs
 * ("backward linear"), everything else is "forward". A backend's profiler files each kernel under the label
 * current at its launch, so a report says which op's backward spent the time, not only which kernel.
 * Thread-confined; costs one thread-local read per launch when a profiler asks for it, nothing otherwise.
 */
public final class OpLabel {
  private static final String FORWARD = "forward";
  private static final ThreadLocal<String> CURRENT = ThreadLocal.withInitial(() -> FORWARD);

  private OpLabel() {}

  /** The current label ("forward" outside any labelled region). */
  public static String current() { return CURRENT.get(); }

  /** Sets the label for a region; returns the previous one, to pass to {@link #restore}. */
  public static String enter(String label) {
    String previous = CURRENT.get();
    CURRENT.set(label);
    return previous;
  }

  public static void restore(String previous) { CURRENT.set(previous); }
}
