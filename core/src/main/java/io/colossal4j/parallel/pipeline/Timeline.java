package io.colossal4j.parallel.pipeline;

import java.util.ArrayList;
import java.util.List;

/**
 * The compute intervals of one rank's pipeline step, for measuring the bubble: each span runs from the moment
 * an action's input is available (after its receive returned) to the moment its output was handed to the
 * transport, so waiting for peers is not counted as work. Used by one thread.
 */
public final class Timeline {
  /** One action's compute interval, in System.nanoTime() units. */
  public record Span(Schedule.Action action, long startNanos, long endNanos) {}

  /**
   * Also marks each action's interval elsewhere, e.g. with events on a GPU's compute stream, where the host's
   * clock sees only the enqueueing of work that runs later. Called on the rank's thread, at the same two points.
   */
  public interface Probe {
    void started(Schedule.Action a);

    void finished(Schedule.Action a);
  }

  private final List<Span> spans = new ArrayList<>();
  private final Probe probe;
  private long stepStart, stepEnd;

  public Timeline() { this(null); }

  /** @param probe marks the same intervals (null: none) */
  public Timeline(Probe probe) { this.probe = probe; }

  void beginStep() {
    spans.clear();
    stepStart = System.nanoTime();
  }

  void endStep() { stepEnd = System.nanoTime(); }

  /** An action's input is available: its interval starts now; returns the host time. */
  long start(Schedule.Action a) {
    if (probe != null) probe.started(a);
    return System.nanoTime();
  }

  void add(Schedule.Action a, long start, long end) {
    if (probe != null) probe.finished(a);
    spans.add(new Span(a, start, end));
  }

  public List<Span> spans() { return List.copyOf(spans); }

  public long stepStartNanos() { return stepStart; }

  public long stepEndNanos() { return stepEnd; }

  /** Total compute time of the last step. */
  public long busyNanos() {
    long busy = 0;
    for (Span s : spans) busy += s.endNanos() - s.startNanos();
    return busy;
  }
}
