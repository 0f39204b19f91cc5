package io.colossal4j.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.models.ModelSpec;
import io.colossal4j.models.Zoo;
import io.colossal4j.nn.ModuleContext;
import io.colossal4j.nn.UnitModel;
import io.colossal4j.ops.Loss;
import io.colossal4j.optim.Adam;
import io.colossal4j.optim.LrSchedule;
import io.colossal4j.optim.ParamGroup;
import io.colossal4j.step.Batch;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.lang.management.ManagementFactory;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ConcurrentSkipListSet;
import jdk.jfr.consumer.RecordedClass;
import jdk.jfr.consumer.RecordedEvent;
import jdk.jfr.consumer.RecordedFrame;
import jdk.jfr.consumer.RecordedStackTrace;
import jdk.jfr.consumer.RecordingStream;
import org.junit.jupiter.api.Test;

/**
 * Steady-state training steps allocate nothing but their outputs: after warm-up, an Engine step of the default job's
 * model ({@code vit_convstem_28}, the fast kernels on two threads)
 * <ul>
 *   <li>takes every activation and temporary from the step arena, which reserves no new chunk, and asks the caching
 *       allocator for nothing at all (gradients and optimizer state already exist; the loss is read as a number), so
 *       no native memory is requested;</li>
 *   <li>allocates on the Java heap (the calling thread and the backend's pool workers together) at most
 *       {@link #HEAP_PER_STORAGE} bytes per step storage. Why that bound: the heap garbage of a step should be the
 *       objects that describe its ops (per op a Tensor, its Shape and stride arrays, an autograd node with its rule's
 *       closure, the storage and its release callback, kernel-call records: about 2–3 KiB measured), never arrays
 *       whose size follows the data. A per-row or per-element array, or a per-call copy of a [tasks × n] buffer,
 *       scales with the batch and the image size, and a Vector API value
 *       the JIT failed to keep in registers costs an object per 16 floats: either grows with the data and soon passes the bound.</li>
 * </ul>
 * Measured with {@code com.sun.management.ThreadMXBean#getThreadAllocatedBytes} over the calling thread and the
 * threads named {@code c4j-cpu-*} (the backend pool's workers), as the least over several single steps, so a step
 * that happens to meet the JIT recompiling a kernel does not decide it.
 *
 * <p>One thing here is up to the JIT: code that C2 has not compiled yet (the interpreter's and C1's) boxes every Vector
 * API value, a heap object per 16 floats. On this two-core machine the GEMM's edge-tile kernel ({@code MicroKernel.narrow},
 * called for edge tiles only) reached C2 about 13 s into the JVM, near the end of the warm-up, so under load a run's
 * measured steps could still meet its C1 code (excluding it from compilation reproduces the report exactly): a round
 * that sees boxing, or heap above the bound, is followed by more warm-up and another round, up to {@link #ROUNDS}; the
 * last round decides. And if C2 compiles a hot
 * kernel without its Vector API intrinsics, the compiled code boxes for the rest of the run. The known cause, a second float
 * species making the JDK's shared call sites bimorphic (about half of all JVMs boxed), is gone and guarded by
 * {@code SingleFloatSpeciesTest}; should the JIT still box in a run, a JFR allocation stream over the measured steps
 * detects it (allocations of Vector API classes, or inside their fallback code), the heap bound is then not decidable,
 * and the test reports the affected methods as an aborted assumption instead of failing on them.
 * The native-memory checks hold either way.
 */
class SteadyStateAllocationTest {
  static final int BATCH = 4, WARM_UP = 250, MEASURED = 6, ROUNDS = 4, MORE_WARM_UP = 150;
  static final long HEAP_PER_STORAGE = 6 * 1024;

  @Test void steadyStepsAllocateNoNativeMemoryAndOnlyPerOpHeapObjects() {
    try (CpuBackend cpu = CpuBackend.create(2)) {
      UnitModel model = Zoo.build(ModuleContext.of(cpu, 0), ModelSpec.of("vit_convstem_28", 10));
      Engine engine = new Engine(model, Adam.adamW(ParamGroup.single(model.namedParameters(), 0.05)),
          (o, t) -> Loss.crossEntropy(o, t), new LrSchedule.Constant(1e-3));
      Random rnd = new Random(3);
      double[] x = new double[BATCH * 784];
      for (int i = 0; i < x.length; i++) x[i] = rnd.nextGaussian();
      Batch batch = new Batch(Tensor.of(x, Shape.of(BATCH, 1, 28, 28), DType.F32, cpu),
          Tensor.of(rnd.longs(BATCH, 0, 10).toArray(), Shape.of(BATCH), DType.I64, cpu));
      for (int i = 0; i < WARM_UP; i++) engine.trainStep(batch);

      long reserved = cpu.stepArenaBytes();
      CpuBackend.HostAllocations host = cpu.hostAllocations();
      long[] threads = stepThreads();
      Round round = measure(cpu, engine, batch, threads);
      // boxing, or heap above the bound, in a round is most often a kernel the JIT has not compiled with C2 yet (or is
      // recompiling): warm up more and measure again; garbage that follows the data stays above the bound every round
      for (int again = 1; again < ROUNDS && !round.steady(); again++) {
        for (int i = 0; i < MORE_WARM_UP; i++) engine.trainStep(batch);
        round = measure(cpu, engine, batch, threads);
      }
      long perStep = round.storagesPerStep(), leastHeap = round.leastHeap();
      CpuBackend.HostAllocations after = cpu.hostAllocations();

      assertEquals(reserved, cpu.stepArenaBytes(), "the step arena reserved a new chunk after warm-up");
      assertEquals(host.fromOs(), after.fromOs(), "native memory was requested from the OS in a steady step");
      assertEquals(host.requests(), after.requests(), "a steady step allocated outside the step arena");
      assertTrue(perStep > 100, "the step's activations come from the arena (" + perStep + " storages per step)");
      assumeTrue(round.boxing().isEmpty(), "the JIT boxes Vector API values in " + ROUNDS + " rounds of this run (heap per step "
          + leastHeap + " B), in " + round.boxing());
      long bound = round.bound();
      assertTrue(leastHeap <= bound, "a steady step allocated " + leastHeap + " B of Java heap, above the bound "
          + bound + " B (" + HEAP_PER_STORAGE + " B for each of its " + perStep + " storages)");
    }
  }

  /** One measurement: the least heap bytes of MEASURED single steps, step-arena storages per step, boxing seen. */
  private record Round(long leastHeap, long storagesPerStep, Set<String> boxing) {
    long bound() { return HEAP_PER_STORAGE * storagesPerStep; }

    boolean steady() { return boxing.isEmpty() && leastHeap <= bound(); }
  }

  private static Round measure(CpuBackend cpu, Engine engine, Batch batch, long[] threads) {
    long storages = cpu.stepArenaAllocations(), leastHeap = Long.MAX_VALUE;
    Set<String> boxing = new ConcurrentSkipListSet<>();
    try (RecordingStream rs = new RecordingStream()) {
      rs.enable("jdk.ObjectAllocationSample").with("throttle", "5000/s").withStackTrace();
      rs.onEvent("jdk.ObjectAllocationSample", e -> vectorBoxing(e).ifPresent(boxing::add));
      rs.startAsync();
      for (int i = 0; i < MEASURED; i++) {
        long before = heapAllocated(threads);
        engine.trainStep(batch);
        leastHeap = Math.min(leastHeap, heapAllocated(threads) - before);
      }
      rs.stop();
    }
    return new Round(leastHeap, (cpu.stepArenaAllocations() - storages) / MEASURED, boxing);
  }

  /**
   * The first project frame of an allocation made by the Vector API's non-intrinsic code (a vector object, or an
   * array made inside jdk.incubator.vector), or empty for any other allocation.
   */
  private static Optional<String> vectorBoxing(RecordedEvent e) {
    RecordedClass type = e.getClass("objectClass");
    RecordedStackTrace trace = e.getStackTrace();
    if (type == null || trace == null || trace.getFrames().isEmpty()) return Optional.empty();
    boolean box = type.getName().startsWith("jdk.incubator.vector.")
        || trace.getFrames().getFirst().getMethod().getType().getName().startsWith("jdk.incubator.vector.");
    if (!box) return Optional.empty();
    for (RecordedFrame f : trace.getFrames()) {
      String owner = f.getMethod().getType().getName();
      if (owner.startsWith("io.colossal4j.")) return Optional.of(owner.substring(owner.lastIndexOf('.') + 1) + "." + f.getMethod().getName());
    }
    return Optional.of(type.getName());
  }

  /** This thread and the CPU backend's pool workers (started by the warm-up). */
  private static long[] stepThreads() {
    return Thread.getAllStackTraces().keySet().stream()
        .filter(t -> t == Thread.currentThread() || t.getName().startsWith("c4j-cpu-")).mapToLong(Thread::threadId).toArray();
  }

  /** Heap bytes allocated so far by {@code threads} (a thread that ended counts as -1 and is skipped). */
  private static long heapAllocated(long[] threads) {
    var mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
    long total = 0;
    for (long b : mx.getThreadAllocatedBytes(threads)) if (b > 0) total += b;
    return total;
  }
}
