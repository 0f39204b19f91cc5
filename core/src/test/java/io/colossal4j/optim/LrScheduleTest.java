package io.colossal4j.optim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

/** Schedules at hand-computed points (exact formulas, tolerance 1e-12). */
class LrScheduleTest {
  @Test void cosineWithWarmup() {
    var s = new LrSchedule.Cosine(1.0, 10, 110, 0.0, 0.0);
    assertEquals(0.0, s.lr(0), 1e-12);
    assertEquals(0.5, s.lr(5), 1e-12);
    assertEquals(1.0, s.lr(10), 1e-12);
    assertEquals(0.5, s.lr(60), 1e-12);          // halfway through the cosine
    assertEquals(0.0, s.lr(110), 1e-12);
    assertEquals(0.0, s.lr(500), 1e-12);         // clamped after the end
  }

  @Test void linearWarmupThenDecay() {
    var s = new LrSchedule.Linear(2.0, 4, 12, 0.25);
    assertEquals(0.5, s.lr(0), 1e-12);
    assertEquals(1.25, s.lr(2), 1e-12);
    assertEquals(2.0, s.lr(4), 1e-12);
    assertEquals(1.0, s.lr(8), 1e-12);
    assertEquals(0.0, s.lr(12), 1e-12);
  }

  @Test void stepDecay() {
    var s = new LrSchedule.Step(0.1, 30, 0.1);
    assertEquals(0.1, s.lr(29), 1e-12);
    assertEquals(0.01, s.lr(30), 1e-12);
  }

  @Test void oneCycleEndpoints() {
    var s = new LrSchedule.OneCycle(1.0, 101, 0.3, 25, 1e4);
    assertEquals(0.04, s.lr(0), 1e-12);
    assertEquals(0.04 / 1e4, s.lr(100), 1e-12);
    // peak at pct_start * total - 1 = 29.3: the max lies between steps 29 and 30
    double peak = Math.max(s.lr(29), s.lr(30));
    assertEquals(1.0, peak, 1e-3);
  }

  @Test void invalidSchedulesNameTheNumbers() {
    var e = assertThrows(IllegalArgumentException.class, () -> new LrSchedule.Cosine(1, 20, 10, 0, 0));
    assertEquals("cosine schedule: need 0 <= warmup <= total and total >= 1, got warmup=20 total=10", e.getMessage());
  }
}
