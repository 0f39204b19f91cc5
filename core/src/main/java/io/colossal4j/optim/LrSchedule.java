package io.colossal4j.optim;

/**
 * A learning rate as a pure function of the step (0-based count of optimizer steps taken), so resuming
 * from a checkpoint needs only the step. Formulas follow PyTorch/timm where a counterpart exists.
 */
public sealed interface LrSchedule {
  double lr(long step);

  record Constant(double lr) implements LrSchedule {
    public double lr(long step) { return lr; }
  }

  /** Linear warm-up from {@code startFactor·base} to base over warmup steps, then linear decay to 0 at total (0 = no decay). */
  record Linear(double base, long warmup, long total, double startFactor) implements LrSchedule {
    public Linear {
      if (warmup < 0 || total < 0 || (total > 0 && warmup > total))
        throw new IllegalArgumentException("linear schedule: need 0 <= warmup <= total, got warmup=" + warmup + " total=" + total);
    }

    public double lr(long step) {
      if (step < warmup) return base * (startFactor + (1 - startFactor) * step / (double) warmup);
      if (total == 0) return base;
      return base * Math.max(0, (total - step) / (double) Math.max(1, total - warmup));
    }
  }

  /** Linear warm-up over {@code warmup} steps, then half-cosine from base to minLr at {@code total}. */
  record Cosine(double base, long warmup, long total, double minLr, double warmupStartLr) implements LrSchedule {
    public Cosine {
      if (total < 1 || warmup < 0 || warmup > total)
        throw new IllegalArgumentException("cosine schedule: need 0 <= warmup <= total and total >= 1, got warmup=" + warmup + " total=" + total);
    }

    public double lr(long step) {
      if (step < warmup) return warmupStartLr + (base - warmupStartLr) * step / (double) warmup;
      double t = Math.min(1, (step - warmup) / (double) Math.max(1, total - warmup));
      return minLr + 0.5 * (base - minLr) * (1 + Math.cos(Math.PI * t));
    }
  }

  /** base · gamma^floor(step / every). */
  record Step(double base, long every, double gamma) implements LrSchedule {
    public Step {
      if (every < 1) throw new IllegalArgumentException("step schedule: every must be >= 1, got " + every);
    }

    public double lr(long step) { return base * Math.pow(gamma, step / every); }
  }

  /**
   * PyTorch's OneCycleLR with cosine annealing: from max/divFactor up to max over pctStart of the steps,
   * then down to max/(divFactor·finalDivFactor) at the last step.
   */
  record OneCycle(double max, long total, double pctStart, double divFactor, double finalDivFactor) implements LrSchedule {
    public OneCycle {
      if (total < 2 || !(pctStart > 0 && pctStart < 1))
        throw new IllegalArgumentException("one-cycle: need total >= 2 and 0 < pct_start < 1, got total=" + total + " pct_start=" + pctStart);
    }

    public double lr(long step) {
      double initial = max / divFactor, fin = initial / finalDivFactor;
      double upEnd = pctStart * total - 1, downEnd = total - 1;
      if (step <= upEnd) return anneal(initial, max, step / upEnd);
      return anneal(max, fin, Math.min(1, (step - upEnd) / (downEnd - upEnd)));
    }

    private static double anneal(double from, double to, double pct) {
      return to + (from - to) / 2 * (Math.cos(Math.PI * pct) + 1);
    }
  }
}
