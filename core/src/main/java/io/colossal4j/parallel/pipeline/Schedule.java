package io.colossal4j.parallel.pipeline;

import java.util.ArrayList;
import java.util.List;

/**
 * The order in which a pipeline rank runs the forward and backward passes of one step's micro-batches.
 * Receives block and sends are buffered, so an order is correct when it is deadlock-free and each rank's
 * sends happen in the order its peers expect; {@code ScheduleOrderTest} simulates every small case.
 */
public sealed interface Schedule {
  /** All forwards, then all backwards: activations of all m micro-batches are alive at once (Huang et al. 2019). */
  record GPipe() implements Schedule {}

  /**
   * One forward, one backward (PipeDream-Flush, Narayanan et al. 2021): rank s runs p−s−1 warm-up forwards,
   * then alternates, then drains; at most p−s micro-batches' activations are alive. Same bubble as GPipe.
   */
  record OneFOneB() implements Schedule {}

  /**
   * Interleaved 1F1B with {@code chunks} model chunks per rank: the bubble shrinks by the factor {@code chunks}
   * at the price of {@code chunks} times more point-to-point traffic. Needs micro-batches in groups of p.
   */
  record Interleaved(int chunks) implements Schedule {
    public Interleaved {
      if (chunks < 1) throw new IllegalArgumentException("interleaved chunks must be >= 1, got " + chunks);
    }
  }

  /** One pass of a micro-batch through one of this rank's chunks (local chunk index). */
  sealed interface Action {
    int micro();

    int chunk();
  }

  record Forward(int micro, int chunk) implements Action {}

  record Backward(int micro, int chunk) implements Action {}

  /** Model chunks per rank. */
  default int chunks() { return this instanceof Interleaved i ? i.chunks() : 1; }

  /** Rejects a micro-batch count this schedule cannot run on {@code p} stages, with the numbers. */
  default void validate(int p, int m) {
    if (m < 1) throw new IllegalArgumentException("a pipeline step needs at least 1 micro-batch, got " + m);
    if (this instanceof Interleaved i && i.chunks() > 1 && m % p != 0)
      throw new IllegalArgumentException("the interleaved schedule (" + i.chunks() + " chunks per stage) needs the micro-batches to be a multiple of the "
          + p + " pipeline stages, got " + m + " micro-batches; use " + (m / p + 1) * p + (m >= p ? " or " + (m / p) * p : ""));
  }

  /** The actions of pipeline rank {@code rank} of {@code p} for {@code m} micro-batches, in execution order. */
  default List<Action> actions(int p, int rank, int m) {
    validate(p, m);
    return switch (this) {
      case GPipe g -> gpipe(m);
      case OneFOneB o -> oneFOneB(p, rank, m);
      case Interleaved i -> i.chunks() == 1 ? oneFOneB(p, rank, m) : interleaved(p, rank, m, i.chunks());
    };
  }

  private static List<Action> gpipe(int m) {
    List<Action> out = new ArrayList<>();
    for (int j = 0; j < m; j++) out.add(new Forward(j, 0));
    for (int j = 0; j < m; j++) out.add(new Backward(j, 0));
    return out;
  }

  private static List<Action> oneFOneB(int p, int rank, int m) {
    int warmup = Math.min(p - rank - 1, m);
    List<Action> out = new ArrayList<>();
    for (int j = 0; j < warmup; j++) out.add(new Forward(j, 0));
    for (int j = warmup; j < m; j++) {
      out.add(new Forward(j, 0));
      out.add(new Backward(j - warmup, 0));
    }
    for (int j = m - warmup; j < m; j++) out.add(new Backward(j, 0));
    return out;
  }

  /**
   * Megatron-LM's interleaved order: forward step k (0 ≤ k < m·v) runs chunk {@code (k mod p·v) / p} on
   * micro-batch {@code (k / p·v)·p + k mod p}; backward steps run the chunks in reverse. Rank s warms up with
   * {@code 2(p−s−1) + (v−1)p} forwards, then alternates one forward and one backward, then drains.
   */
  private static List<Action> interleaved(int p, int rank, int m, int v) {
    int total = m * v;
    int warmup = Math.min(total, m == p ? total : 2 * (p - rank - 1) + (v - 1) * p);
    List<Action> out = new ArrayList<>();
    for (int k = 0; k < warmup; k++) out.add(new Forward(micro(k, p, v), (k % (p * v)) / p));
    for (int k = warmup; k < total; k++) {
      out.add(new Forward(micro(k, p, v), (k % (p * v)) / p));
      int b = k - warmup;
      out.add(new Backward(micro(b, p, v), v - 1 - (b % (p * v)) / p));
    }
    for (int b = total - warmup; b < total; b++) out.add(new Backward(micro(b, p, v), v - 1 - (b % (p * v)) / p));
    return out;
  }

  private static int micro(int k, int p, int v) { return (k / (p * v)) * p + k % p; }
}
