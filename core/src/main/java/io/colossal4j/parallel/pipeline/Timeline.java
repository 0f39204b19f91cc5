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

  private final List<Span> spans = new ArrayList<>();
  private long stepStart, stepEnd;

  void beginStep() {
    spans.clear();
    stepStart = System.nanoTime();
  }

  void endStep() { stepEnd = System.nanoTime(); }

  void add(Schedule.Action a, long start, long end) { spans.add(new Span(a, start, end)); }

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
