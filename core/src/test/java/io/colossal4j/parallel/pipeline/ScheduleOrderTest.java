package io.colossal4j.parallel.pipeline;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The schedules' action orders, played on an idealised machine ({@link ScheduleSimulation}): deadlock-free,
 * every pass exactly once, 1F1B's activation bound, and bubbles equal to the closed forms. The simulation uses
 * exact small-integer times, so the closed forms hold to rounding (1e-12).
 */
class ScheduleOrderTest {
  @Test void everyScheduleIsDeadlockFreeOnSmallCases() {
    for (int p = 1; p <= 5; p++)
      for (int m = 1; m <= 13; m++) {
        ScheduleSimulation.run(new Schedule.GPipe(), p, m, 1, 2);
        ScheduleSimulation.run(new Schedule.OneFOneB(), p, m, 1, 2);
        for (int v = 2; v <= 3; v++) if (m % p == 0) ScheduleSimulation.run(new Schedule.Interleaved(v), p, m, 1, 2);
      }
  }

  @Test void gpipeAndOneFOneBBubbleIsTheClosedForm() {
    for (int p : new int[] {2, 3, 4, 8})
      for (int m : new int[] {1, 4, 2 * p, 4 * p}) {
        for (Schedule s : List.of(new Schedule.GPipe(), new Schedule.OneFOneB())) {
          var r = ScheduleSimulation.run(s, p, m, 1, 2);
          assertEquals((m + p - 1) * 3.0, r.makespan(), 1e-12, s + " p=" + p + " m=" + m);
          for (int rank = 0; rank < p; rank++) assertEquals((p - 1) / (double) (m + p - 1), r.idleFraction(rank), 1e-12);
        }
      }
  }

  @Test void oneFOneBHoldsAtMostPMinusRankActivations() {
    int p = 4, m = 16;
    var oneF = ScheduleSimulation.run(new Schedule.OneFOneB(), p, m, 1, 2);
    var gpipe = ScheduleSimulation.run(new Schedule.GPipe(), p, m, 1, 2);
    for (int r = 0; r < p; r++) {
      assertEquals(p - r, oneF.peakInFlight()[r], "1F1B in flight at rank " + r);
      assertEquals(m, gpipe.peakInFlight()[r], "GPipe in flight at rank " + r);
    }
  }

  @Test void interleavedBubbleShrinksByTheChunkCount() {
    // Narayanan et al. 2021: bubble time / ideal compute time = (p-1)/(v·m) with backward = 2 × forward
    for (int p : new int[] {2, 4})
      for (int v : new int[] {2, 4}) {
        int m = 4 * p;
        var r = ScheduleSimulation.run(new Schedule.Interleaved(v), p, m, 1, 2);
        double ideal = m * 3.0, bubble = r.makespan() - ideal;
        assertEquals((p - 1) / (double) (v * m), bubble / ideal, 1e-12, "p=" + p + " v=" + v);
      }
  }

  @Test void interleavedRejectsMicroBatchesNotAMultipleOfStages() {
    var e = assertThrows(IllegalArgumentException.class, () -> new Schedule.Interleaved(2).actions(4, 0, 6));
    assertTrue(e.getMessage().contains("multiple of the 4 pipeline stages, got 6 micro-batches; use 8 or 4"), e.getMessage());
  }
}
