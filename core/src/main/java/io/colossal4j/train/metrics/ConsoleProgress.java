package io.colossal4j.train.metrics;

import java.io.PrintStream;
import java.util.Locale;
import java.util.function.LongSupplier;

/**
 * The per-epoch progress display. {@link Mode#BAR} redraws one line in place ({@code \r}) on a terminal:
 * <pre>epoch 2/5 [##########..........] 234/468 loss 0.4123 acc 85.2% 1234 samples/s ETA 0:35</pre>
 * {@link Mode#PLAIN} prints the same fields as a new line at most every {@code plainInterval} nanoseconds and at
 * the end of the epoch, which reads well in CI logs and under the launcher where stdout is a pipe.
 * Not thread-safe; call from the training thread.
 */
public final class ConsoleProgress {
  public enum Mode { BAR, PLAIN, OFF }

  private static final int WIDTH = 24;

  private final PrintStream out;
  private final Mode mode;
  private final LongSupplier nanoTime;
  private final long plainInterval;
  private int epoch, epochs, total;
  private long epochStart, lastPrint;
  private int startDone;
  private String lastLine = "";

  public ConsoleProgress(PrintStream out, Mode mode, LongSupplier nanoTime, long plainIntervalNanos) {
    this.out = out;
    this.mode = mode;
    this.nanoTime = nanoTime;
    this.plainInterval = plainIntervalNanos;
  }

  /** A bar when stdout is a terminal, plain lines every 10 seconds otherwise. */
  public static ConsoleProgress forStdout(boolean allowBar) {
    boolean terminal = System.console() != null && System.console().isTerminal();
    return new ConsoleProgress(System.out, allowBar && terminal ? Mode.BAR : Mode.PLAIN, System::nanoTime, 10_000_000_000L);
  }

  public Mode mode() { return mode; }

  /** Begins epoch {@code epoch} (0-based) of {@code epochs}, which has {@code total} batches; {@code done} are already done (resume). */
  public void startEpoch(int epoch, int epochs, int total, int done) {
    this.epoch = epoch;
    this.epochs = epochs;
    this.total = total;
    this.epochStart = nanoTime.getAsLong();
    this.lastPrint = epochStart;
    this.startDone = done;
  }

  /** After batch {@code done} (1-based count within the epoch). Accuracy is a fraction, NaN if unknown. */
  public void update(int done, double loss, double accuracy, double samplesPerS) {
    if (mode == Mode.OFF) return;
    long now = nanoTime.getAsLong();
    lastLine = line(done, loss, accuracy, samplesPerS, now);
    if (mode == Mode.BAR) {
      out.print("\r" + lastLine + "\033[K");
      out.flush();
    } else if (now - lastPrint >= plainInterval || done == total) {
      out.println(lastLine);
      lastPrint = now;
    }
  }

  /** Ends the epoch's display (the bar's line is kept) and prints {@code note} (e.g. the evaluation) if not empty. */
  public void endEpoch(String note) {
    if (mode == Mode.OFF) return;
    if (mode == Mode.BAR) out.println();
    if (!note.isEmpty()) out.println(note);
    out.flush();
  }

  String line(int done, double loss, double accuracy, double samplesPerS, long now) {
    StringBuilder sb = new StringBuilder();
    sb.append("epoch ").append(epoch + 1).append('/').append(epochs).append(' ');
    if (mode == Mode.BAR) {
      int filled = total == 0 ? WIDTH : (int) ((long) done * WIDTH / total);
      sb.append('[').append("#".repeat(filled)).append(".".repeat(WIDTH - filled)).append("] ");
    }
    sb.append(done).append('/').append(total);
    sb.append(String.format(Locale.ROOT, " loss %.4f", loss));
    if (!Double.isNaN(accuracy)) sb.append(String.format(Locale.ROOT, " acc %.1f%%", 100 * accuracy));
    sb.append(String.format(Locale.ROOT, " %.0f samples/s", samplesPerS));
    int progressed = done - startDone;
    if (progressed > 0 && done < total) {
      double perBatch = (now - epochStart) / 1e9 / progressed;
      sb.append(" ETA ").append(duration(perBatch * (total - done)));
    } else if (done == total) sb.append(" in ").append(duration((now - epochStart) / 1e9));
    return sb.toString();
  }

  /** {@code m:ss} or {@code h:mm:ss}. */
  public static String duration(double seconds) {
    long s = Math.round(seconds);
    return s >= 3600 ? "%d:%02d:%02d".formatted(s / 3600, s / 60 % 60, s % 60) : "%d:%02d".formatted(s / 60, s % 60);
  }
}
