package io.colossal4j.ops;

import static io.colossal4j.testing.GradCheck.assertClose;
import static io.colossal4j.testing.GradCheck.check;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.autograd.Autograd;
import io.colossal4j.backend.Backend;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;
import io.colossal4j.testing.FusedGeluBackend;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/**
 * LinAlg.linearGelu = gelu(linear(x, w, b)). On the CPU backends it is the composite, bit for bit (values and
 * gradients). Its fused branch (the GELU backward and b's gradient in one kernel call, then linear's GEMMs) runs
 * here on {@link #FUSING} ({@link FusedGeluBackend}: the scalar reference kernels with the fused call switched on),
 * so the branch and its backward are checked by finite differences without a GPU; the CUDA kernel itself is tested
 * in backend.cuda.CudaLinearGeluTest.
 */
class LinearGeluOpTest {
  static final Backend REF = CpuBackend.reference();
  static final CpuBackend FAST = CpuBackend.create(2);
  static final AtomicInteger FUSED_CALLS = new AtomicInteger();
  static final Backend FUSING = FusedGeluBackend.create(FUSED_CALLS);
  private static final String[] NAMES = {"output", "grad x", "grad w", "grad b"};

  @AfterAll static void close() { FAST.close(); }

  @Test void cpuIsTheCompositeBitForBit() {
    for (Backend be : new Backend[] {REF, FAST})
      for (DType t : new DType[] {DType.F32, DType.BF16})
        for (LinAlg.Gelu gelu : LinAlg.Gelu.values())
          for (boolean bias : new boolean[] {true, false}) {
            Tensor[] fused = run(be, t, gelu, bias, false), composite = run(be, t, gelu, bias, true);
            for (int i = 0; i < NAMES.length; i++)
              if (composite[i] != null)
                assertArrayEquals(composite[i].toDoubleArray(), fused[i].toDoubleArray(), 0.0, NAMES[i] + " " + t + " " + gelu + " on " + be.name());
          }
  }

  /**
   * The fused branch against the composite on the reference: the same kernels (matmul with bias, GELU, GELU backward,
   * GEMMs) on the same values, and b's gradient a double sum of the same f32/bf16 values rounded once (exact in
   * double for 10 rows of 24-bit values whatever the order): bit for bit in f32 and bf16, 1e-14 in f64.
   */
  @Test void fusedBranchMatchesTheComposite() {
    for (DType t : new DType[] {DType.F32, DType.BF16, DType.F64})
      for (LinAlg.Gelu gelu : LinAlg.Gelu.values()) {
        int before = FUSED_CALLS.get();
        Tensor[] fused = run(FUSING, t, gelu, true, false), composite = run(REF, t, gelu, true, true);
        assertEquals(before + 1, FUSED_CALLS.get(), "one fused call");
        double tol = t == DType.F64 ? 1e-14 : 0;
        for (int i = 0; i < NAMES.length; i++)
          assertClose(composite[i].toDoubleArray(), fused[i].toDoubleArray(), tol, tol, NAMES[i] + " " + t + " " + gelu);
      }
  }

  @Test void gradientsByFiniteDifferences() {
    for (Backend be : new Backend[] {REF, FUSING})
      for (LinAlg.Gelu gelu : LinAlg.Gelu.values()) {
        int before = FUSED_CALLS.get();
        check(be, t -> LinAlg.linearGelu(t[0], t[1], t[2], gelu), Shape.of(2, 3, 4), Shape.of(5, 4), Shape.of(5));
        check(be, t -> LinAlg.linearGelu(t[0], t[1], t[2], gelu), Shape.of(4), Shape.of(3, 4), Shape.of(3));
        check(be, t -> LinAlg.linearGelu(t[0], t[1], null, gelu), Shape.of(2, 3, 4), Shape.of(5, 4));
        // x whose leading dims do not fold into one row stride (a permuted view: the op copies it)
        check(be, t -> LinAlg.linearGelu(Views.permute(t[0], 1, 0, 2), t[1], t[2], gelu), Shape.of(3, 2, 4), Shape.of(5, 4), Shape.of(5));
        // the fused branch ran on FUSING (each backward with a bias: the analytic pass of three checks)
        if (be == FUSING) assertEquals(before + 3, FUSED_CALLS.get(), "fused calls");
      }
  }

  @Test void inputsWithoutGradientsGetNone() {
    Tensor x = rand(FUSING, Shape.of(3, 4), DType.F64, 1), w = rand(FUSING, Shape.of(5, 4), DType.F64, 2).requiresGrad(true);
    Tensor b = rand(FUSING, Shape.of(5), DType.F64, 3);
    Tensor y = LinAlg.linearGelu(x, w, b, LinAlg.Gelu.EXACT);
    Autograd.backward(y, rand(FUSING, y.shape(), DType.F64, 4), false);
    Tensor wr = rand(REF, Shape.of(5, 4), DType.F64, 2).requiresGrad(true);
    Tensor yr = Arith.gelu(LinAlg.linear(rand(REF, Shape.of(3, 4), DType.F64, 1), wr, rand(REF, Shape.of(5), DType.F64, 3)));
    Autograd.backward(yr, rand(REF, yr.shape(), DType.F64, 4), false);
    assertClose(wr.grad().toDoubleArray(), w.grad().toDoubleArray(), 1e-14, 1e-14, "grad w");
    assertNull(x.grad());
    assertNull(b.grad());
  }

  @Test void badInputsAreClearErrors() {
    Tensor x = Tensor.zeros(Shape.of(2, 5, 4), DType.F32, REF), w = Tensor.zeros(Shape.of(3, 4), DType.F32, REF);
    TensorException e = assertThrows(TensorException.class, () -> LinAlg.linearGelu(x, w, null, null));
    assertTrue(e.getMessage().startsWith("linearGelu: the GELU must be Gelu.EXACT or Gelu.TANH"), e.getMessage());
    TensorException in = assertThrows(TensorException.class, () -> LinAlg.linearGelu(x, Tensor.zeros(Shape.of(3, 5), DType.F32, REF), null, LinAlg.Gelu.EXACT));
    assertTrue(in.getMessage().startsWith("linearGelu: input features 4"), in.getMessage());
    TensorException bias = assertThrows(TensorException.class, () -> LinAlg.linearGelu(x, w, Tensor.zeros(Shape.of(4), DType.F32, REF), LinAlg.Gelu.TANH));
    assertTrue(bias.getMessage().startsWith("linearGelu: bias must be [3]"), bias.getMessage());
    TensorException ints = assertThrows(TensorException.class, () -> LinAlg.linearGelu(Tensor.zeros(Shape.of(2, 4), DType.I32, REF),
        Tensor.zeros(Shape.of(3, 4), DType.I32, REF), null, LinAlg.Gelu.EXACT));
    assertTrue(ints.getMessage().startsWith("linearGelu: needs floating input and weight, got I32 and I32"), ints.getMessage());
  }

  /** {y, gx, gw, gb} of linearGelu (or the composite) on x [2, 5, 12], w [7, 12], b [7]. */
  private static Tensor[] run(Backend be, DType t, LinAlg.Gelu gelu, boolean bias, boolean composite) {
    Tensor x = rand(be, Shape.of(2, 5, 12), t, 1).requiresGrad(true), w = rand(be, Shape.of(7, 12), t, 2).requiresGrad(true);
    Tensor b = bias ? rand(be, Shape.of(7), t, 3).requiresGrad(true) : null;
    Tensor y = composite ? gelu.apply(LinAlg.linear(x, w, b)) : LinAlg.linearGelu(x, w, b, gelu);
    assertEquals(t, y.dtype());
    Autograd.backward(y, rand(be, y.shape(), t, 99), false);
    return new Tensor[] {y, x.grad(), w.grad(), bias ? b.grad() : null};
  }

  private static Tensor rand(Backend be, Shape s, DType t, long seed) {
    // x·w of order 1 around GELU's bend: inputs in [-1.5, 1.5)
    return Tensor.of(new Random(seed).doubles(s.numel(), -1.5, 1.5).toArray(), s, t, be);
  }
}
