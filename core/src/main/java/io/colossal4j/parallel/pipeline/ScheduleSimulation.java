package io.colossal4j.parallel.pipeline;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Plays a schedule on an idealised machine: every rank runs its actions in order, a forward of one chunk takes
 * {@code forwardTime / v} and a backward {@code backwardTime / v}, communication is free, and an action starts
 * when its rank is free and its input exists. This is how the schedules are checked for deadlock freedom and
 * how the bench states the bubble the schedule itself implies (against which the measured one is compared).
 */
public final class ScheduleSimulation {
  /** Per rank: when its last action finished and how long it computed. */
  public record Result(double[] finish, double[] busy, int[] peakInFlight) {
    public double makespan() {
      double m = 0;
      for (double f : finish) m = Math.max(m, f);
      return m;
    }

    /** Idle fraction of rank r over the whole step (makespan). */
    public double idleFraction(int r) { return 1 - busy[r] / makespan(); }
  }

  private ScheduleSimulation() {}

  /** Runs the schedule; throws naming the ranks and actions that wait forever if it deadlocks. */
  public static Result run(Schedule schedule, int p, int m, double forwardTime, double backwardTime) {
    int v = schedule.chunks(), vsCount = p * v;
    List<List<Schedule.Action>> lists = new ArrayList<>();
    for (int r = 0; r < p; r++) lists.add(schedule.actions(p, r, m));
    Map<String, Double> done = new HashMap<>();
    int[] next = new int[p], inFlight = new int[p], peak = new int[p];
    double[] free = new double[p], busy = new double[p];
    boolean progress = true;
    while (progress) {
      progress = false;
      for (int r = 0; r < p; r++) {
        while (next[r] < lists.get(r).size()) {
          Schedule.Action a = lists.get(r).get(next[r]);
          int vs = a.chunk() * p + r;
          boolean fwd = a instanceof Schedule.Forward;
          String dep = fwd ? (vs == 0 ? null : key(true, a.micro(), vs - 1)) : (vs == vsCount - 1 ? key(true, a.micro(), vs) : key(false, a.micro(), vs + 1));
          if (dep != null && !done.containsKey(dep)) break;
          if (!fwd && !done.containsKey(key(true, a.micro(), vs))) throw new IllegalStateException("rank " + r + " runs " + a + " before its forward");
          double cost = (fwd ? forwardTime : backwardTime) / v;
          double start = Math.max(free[r], dep == null ? 0 : done.get(dep));
          free[r] = start + cost;
          busy[r] += cost;
          if (done.put(key(fwd, a.micro(), vs), free[r]) != null) throw new IllegalStateException("rank " + r + " runs " + a + " twice");
          inFlight[r] += fwd ? 1 : -1;
          peak[r] = Math.max(peak[r], inFlight[r]);
          next[r]++;
          progress = true;
        }
      }
    }
    List<String> stuck = new ArrayList<>();
    for (int r = 0; r < p; r++) if (next[r] < lists.get(r).size()) stuck.add("rank " + r + " at " + lists.get(r).get(next[r]));
    if (!stuck.isEmpty()) throw new IllegalStateException(schedule + " deadlocks for p=" + p + " m=" + m + ": " + String.join(", ", stuck));
    if (done.size() != 2 * m * vsCount) throw new IllegalStateException(schedule + " ran " + done.size() + " passes, expected " + 2 * m * vsCount);
    return new Result(free, busy, peak);
  }

  private static String key(boolean forward, int micro, int vs) { return (forward ? "F" : "B") + micro + "@" + vs; }
}
