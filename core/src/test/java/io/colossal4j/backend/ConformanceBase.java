package io.colossal4j.backend;

import io.colossal4j.backend.ConformanceSupport.Pair;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.TestInstance;

/**
 * State shared by the conformance suites: the backend under test, the scalar reference, one seeded random
 * stream, and helpers that make the same input on both sides and poisoned outputs. See
 * {@link KernelConformance} for the suite a backend subclasses.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
public abstract class ConformanceBase {
  /** The backend under test; called once per class. */
  protected abstract Backend createBackend();

  protected Backend dut;
  protected Backend ref;
  final Random rnd = new Random(20260514);

  @BeforeAll void setUp() {
    dut = createBackend();
    ref = CpuBackend.reference();
  }

  @AfterAll void tearDown() {
    if (dut != null) dut.close(); // null when createBackend() skipped the class (no such device here)
    if (ref != null) ref.close();
  }

  Pair random(Shape s, double lo, double hi) { return ConformanceSupport.random(dut, ref, rnd, s, lo, hi); }

  Pair random(Shape s) { return random(s, -1, 1); }

  Pair out(Shape s) { return ConformanceSupport.poisoned(dut, ref, s); }

  /** The reference tensor's values, uploaded to the backend under test (so both sides see identical inputs). */
  Pair fromReference(Tensor r) { return new Pair(Tensor.of(r.toFloatArray(), r.shape(), dut), r); }
}
