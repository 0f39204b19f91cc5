package io.colossal4j.launch;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.function.BiConsumer;

/**
 * One rank started by the launcher: its process, and a thread that copies its output (stdout and stderr
 * merged) to the launcher's console with a {@code [rank R]} prefix, to its own log file, and to an optional
 * listener. Keeps the last lines for the failure summary. Thread-safe.
 */
final class RankProcess {
  final int rank;
  final Path log;
  final Process process;
  final long startNanos = System.nanoTime();
  private final Thread pump;
  private final Deque<String> tail = new ArrayDeque<>();
  private volatile boolean stoppedByLauncher;
  private volatile long exitNanos;

  RankProcess(int rank, Process process, Path log, String prefix, PrintStream console, BiConsumer<Integer, String> listener) {
    this.rank = rank;
    this.process = process;
    this.log = log;
    this.pump = Thread.ofPlatform().daemon().name("c4j-launch-out-" + rank).start(() -> pump(prefix, console, listener));
    process.onExit().thenRun(() -> exitNanos = System.nanoTime());
  }

  private void pump(String prefix, PrintStream console, BiConsumer<Integer, String> listener) {
    try (var in = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
         Writer file = Files.newBufferedWriter(log, StandardCharsets.UTF_8)) {
      String line;
      while ((line = in.readLine()) != null) {
        synchronized (console) {
          console.println(prefix + line);
        }
        file.write(line);
        file.write('\n');
        file.flush();
        remember(line);
        if (listener != null) listener.accept(rank, line);
      }
    } catch (IOException e) {
      remember("(output lost: " + e.getMessage() + ")");
    }
  }

  private synchronized void remember(String line) {
    tail.addLast(line);
    if (tail.size() > 40) tail.removeFirst();
  }

  /** Waits (bounded) until everything the rank printed has been copied. */
  void drain() {
    try {
      pump.join(2000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /** The line that best explains how the rank ended: its last error-looking line, else its last line. */
  synchronized String lastMessage() {
    String last = "";
    for (String l : tail) if (!l.isBlank()) last = l;
    for (var it = tail.descendingIterator(); it.hasNext(); ) {
      String l = it.next(), lower = l.toLowerCase();
      if (lower.contains("exception") || lower.contains("error") || lower.contains("failed") || lower.contains("timed out")) return l.strip();
    }
    return last.strip();
  }

  boolean alive() { return process.isAlive(); }

  void stop() {
    if (!process.isAlive()) return;
    stoppedByLauncher = true;
    process.destroy();
  }

  void kill() {
    if (!process.isAlive()) return;
    stoppedByLauncher = true;
    process.destroyForcibly();
  }

  /** How the rank ended, in words: exit code, the signal that killed it, or that the launcher stopped it. */
  String ending() {
    if (process.isAlive()) return "running";
    int code = process.exitValue();
    double secs = (exitNanos == 0 ? System.nanoTime() - startNanos : exitNanos - startNanos) / 1e9;
    String when = " after %.1f s".formatted(secs);
    if (stoppedByLauncher) return "stopped by the launcher" + when;
    if (code > 128 && code < 160) return "killed by signal " + (code - 128) + when;
    return (code == 0 ? "finished" : "failed") + when;
  }
}
