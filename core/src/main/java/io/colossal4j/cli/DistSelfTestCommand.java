package io.colossal4j.cli;

import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.distributed.Reduction;
import io.colossal4j.launch.EnvRendezvous;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.Arrays;
import java.util.Random;

/**
 * {@code colossal _dist-selftest <scenario>}: a small rank program for the launcher's tests and the comm
 * benchmark (hidden from the command list). Scenarios:
 * <ul>
 *   <li>{@code collectives}: every collective on random integer-valued data, checked against the expectation
 *   computed locally (each rank regenerates every rank's data from its seed); prints "checks passed";</li>
 *   <li>{@code kill <rank> <millis>}: all ranks loop over large all-reduces; that rank halts after the delay,
 *   in the middle of one (the others must fail promptly, naming it);</li>
 *   <li>{@code hang <rank>}: that rank never joins; the others must time out (set a short --timeout);</li>
 *   <li>{@code shared}: all-reduces in place on shared buffers ({@link ProcessGroup#allocateShared}), checked
 *   the same way; prints "shared checks passed" and whether the buffers are shared;</li>
 *   <li>{@code kill-shared <rank> <millis>}: as kill, on a shared buffer;</li>
 *   <li>{@code bench-allreduce <minBytes> <maxBytes>}: f32 all-reduce timings, rank 0 prints RESULT lines.</li>
 * </ul>
 */
final class DistSelfTestCommand implements Main.Command {
  @Override public String summary() { return "rank program for the launcher tests and bench comm (hidden)"; }

  @Override public int run(String[] args) throws Exception {
    if (args.length == 0) throw new IllegalArgumentException("scenario missing: collectives | kill R MS | hang R | bench-allreduce MIN MAX");
    ProcessGroup world = EnvRendezvous.join(System.err)
        .orElseThrow(() -> new IllegalArgumentException("not started as a rank (RANK/WORLD_SIZE unset); use colossal run"));
    try (CpuBackend cpu = CpuBackend.reference()) {
      switch (args[0]) {
        case "collectives" -> collectives(world, cpu);
        case "kill" -> kill(world, cpu, Integer.parseInt(args[1]), Long.parseLong(args[2]), false);
        case "hang" -> hang(world, cpu, Integer.parseInt(args[1]));
        case "shared" -> shared(world, cpu);
        case "kill-shared" -> kill(world, cpu, Integer.parseInt(args[1]), Long.parseLong(args[2]), true);
        case "bench-allreduce" -> CommBench.rankLoop(world, cpu, Long.parseLong(args[1]), Long.parseLong(args[2]));
        default -> throw new IllegalArgumentException("unknown scenario '" + args[0] + "'");
      }
    }
    world.close();
    return 0;
  }

  private static double[] data(int rank, int n, long seed) {
    Random rnd = new Random(seed * 1000 + rank);
    double[] d = new double[n];
    for (int i = 0; i < n; i++) d[i] = rnd.nextInt(17) - 8;
    return d;
  }

  private static void collectives(ProcessGroup g, CpuBackend cpu) {
    int world = g.size(), checks = 0;
    long seed = 0;
    for (DType dt : new DType[] {DType.F32, DType.BF16, DType.I64, DType.F64}) {
      for (int n : new int[] {0, 1, 13, 1009, 20011}) {
        for (Reduction op : Reduction.values()) {
          if (op == Reduction.AVG && !dt.isFloating()) continue;
          seed++;
          Tensor t = Tensor.of(data(g.rank(), n, seed), Shape.of(n), dt, cpu);
          g.allReduce(t, op);
          check(t, expectedReduce(op, world, n, seed, dt, cpu), "all_reduce " + op + " " + dt + " n=" + n);
          checks++;
        }
        seed++;
        Tensor out = Tensor.zeros(Shape.of(world * n), dt, cpu);
        g.allGather(out, Tensor.of(data(g.rank(), n, seed), Shape.of(n), dt, cpu));
        double[] exp = new double[world * n];
        for (int r = 0; r < world; r++) System.arraycopy(Tensor.of(data(r, n, seed), Shape.of(n), dt, cpu).toDoubleArray(), 0, exp, r * n, n);
        check(out, exp, "all_gather " + dt + " n=" + n);
        seed++;
        Tensor in = Tensor.of(data(g.rank(), world * n, seed), Shape.of(world * n), dt, cpu);
        Tensor part = Tensor.zeros(Shape.of(n), dt, cpu);
        g.reduceScatter(part, in, Reduction.SUM);
        double[] all = expectedReduce(Reduction.SUM, world, world * n, seed, dt, cpu);
        check(part, Arrays.copyOfRange(all, g.rank() * n, (g.rank() + 1) * n), "reduce_scatter " + dt + " n=" + n);
        seed++;
        int root = (int) (seed % world);
        Tensor b = Tensor.of(data(g.rank(), n, seed), Shape.of(n), dt, cpu);
        g.broadcast(b, root);
        check(b, Tensor.of(data(root, n, seed), Shape.of(n), dt, cpu).toDoubleArray(), "broadcast " + dt + " n=" + n);
        checks += 3;
      }
    }
    // Several shared-memory slices (256 KiB) per tensor: between processes of one host, the split
    // (reduce-scatter, all-gather per slice) path, with a short last slice.
    int large = 200_003;
    for (DType dt : new DType[] {DType.F32, DType.BF16, DType.F64}) {
      for (Reduction op : new Reduction[] {Reduction.SUM, Reduction.AVG, Reduction.MAX}) {
        seed++;
        Tensor t = Tensor.of(data(g.rank(), large, seed), Shape.of(large), dt, cpu);
        g.allReduce(t, op);
        check(t, expectedReduce(op, world, large, seed, dt, cpu), "all_reduce " + op + " " + dt + " n=" + large);
        checks++;
      }
    }
    Tensor ring = Tensor.scalar(g.rank(), DType.I64, cpu);
    if (world > 1) {
      var w = g.sendAsync(ring, (g.rank() + 1) % world, 5);
      Tensor got = Tensor.scalar(-1, DType.I64, cpu);
      g.recv(got, (g.rank() + world - 1) % world, 5);
      w.await();
      check(got, new double[] {(g.rank() + world - 1) % world}, "send/recv ring");
    }
    g.barrier();
    System.out.println("rank " + g.rank() + ": " + (checks + 1) + " checks passed");
  }

  private static double[] expectedReduce(Reduction op, int world, int n, long seed, DType dt, CpuBackend cpu) {
    double[] acc = data(0, n, seed);
    for (int r = 1; r < world; r++) {
      double[] d = data(r, n, seed);
      for (int i = 0; i < n; i++) acc[i] = switch (op) {
        case SUM, AVG -> acc[i] + d[i];
        case MAX -> Math.max(acc[i], d[i]);
        case MIN -> Math.min(acc[i], d[i]);
      };
    }
    if (op == Reduction.AVG) for (int i = 0; i < n; i++) acc[i] /= world;
    return Tensor.of(acc, Shape.of(n), dt, cpu).toDoubleArray();
  }

  private static void check(Tensor t, double[] expected, String what) {
    double[] got = t.toDoubleArray();
    for (int i = 0; i < got.length; i++)
      if (got[i] != expected[i]) throw new IllegalStateException(what + ": element " + i + " is " + got[i] + ", expected " + expected[i]);
  }

  /**
   * In-place all-reduces of views of shared buffers (one per dtype, at element 0 and 3): sizes 0, 1, primes
   * and sizes not divisible by the world size, up to 65537 elements (several 256 KiB pieces), every reduction.
   */
  private static void shared(ProcessGroup g, CpuBackend cpu) {
    int world = g.size(), checks = 0, largest = 65_537;
    long seed = 500;
    boolean shared = true;
    for (DType dt : new DType[] {DType.F32, DType.BF16, DType.I64}) {
      Tensor buf = g.allocateShared(Shape.of(largest + 3), dt, cpu, io.colossal4j.tensor.MemoryCategory.GRADIENT);
      shared &= g.isShared(buf);
      for (int n : new int[] {0, 1, 13, 1009, largest}) {
        for (Reduction op : Reduction.values()) {
          if (op == Reduction.AVG && !dt.isFloating()) continue;
          seed++;
          Tensor t = buf.view(Shape.of(n), new long[] {1}, seed % 2 == 0 ? 0 : 3);
          cpu.copyFromHost(CpuBackend.segment(Tensor.of(data(g.rank(), n, seed), Shape.of(n), dt, cpu)), t);
          g.allReduce(t, op);
          check(t, expectedReduce(op, world, n, seed, dt, cpu), "shared all_reduce " + op + " " + dt + " n=" + n);
          checks++;
        }
      }
    }
    g.barrier();
    System.out.println("rank " + g.rank() + ": " + checks + " shared checks passed (in shared memory: " + shared + ")");
  }

  private static void kill(ProcessGroup g, CpuBackend cpu, int victim, long millis, boolean shared) {
    if (g.rank() == victim) {
      Thread.ofPlatform().daemon().start(() -> {
        try {
          Thread.sleep(millis);
        } catch (InterruptedException ignored) {
          // halting anyway
        }
        System.out.println("rank " + victim + ": halting now, in the middle of a collective");
        System.out.flush();
        Runtime.getRuntime().halt(137);
      });
    }
    Tensor t = shared ? g.allocateShared(Shape.of(1 << 20), DType.F32, cpu, io.colossal4j.tensor.MemoryCategory.GRADIENT)
        : Tensor.zeros(Shape.of(1 << 20), DType.F32, cpu);
    for (int i = 0; ; i++) g.allReduce(t, Reduction.SUM);
  }

  private static void hang(ProcessGroup g, CpuBackend cpu, int victim) throws InterruptedException {
    if (g.rank() == victim) {
      System.out.println("rank " + victim + ": not joining the all-reduce");
      Thread.sleep(Long.MAX_VALUE);
    }
    g.allReduce(Tensor.zeros(Shape.of(16), DType.F32, cpu), Reduction.SUM);
  }
}
