package io.colossal4j.ops;

import static io.colossal4j.testing.GradCheck.assertClose;
import static io.colossal4j.testing.GradCheck.check;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.autograd.Autocast;
import io.colossal4j.autograd.Autograd;
import io.colossal4j.backend.Backend;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;
import io.colossal4j.testing.FusedResidualBackend;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/**
 * LinAlg.linearAdd = residual + linear(x, w, b). On the CPU backends it is the composite, bit for bit (values and
 * gradients). Its fused path (one kernel, residual's gradient = the output gradient, x/w/b gradients linear's)
 * runs here on {@link #FUSING} ({@link FusedResidualBackend}: the scalar reference kernels with the fused kernel
 * switched on, its reference implementation rounding once), so the op's fused branch and its backward are checked by finite differences
 * without a GPU; the CUDA kernel itself is tested in backend.cuda.CudaLinearResidualTest.
 */
class LinearAddOpTest {
  static final Backend REF = CpuBackend.reference();
  static final CpuBackend FAST = CpuBackend.create(2);
  /** Calls of the fused kernel on {@link #FUSING}. */
  static final AtomicInteger FUSED_CALLS = new AtomicInteger();
  static final Backend FUSING = FusedResidualBackend.create(FUSED_CALLS);

  @AfterAll static void close() { FAST.close(); }

  @Test void cpuIsTheCompositeBitForBit() {
    for (Backend be : new Backend[] {REF, FAST})
      for (DType t : new DType[] {DType.F32, DType.BF16})
        for (boolean bias : new boolean[] {true, false}) {
          Tensor[] fused = run(be, t, bias, x -> x, false), composite = run(be, t, bias, x -> x, true);
          String[] what = {"output", "grad x", "grad w", "grad b", "grad residual"};
          for (int i = 0; i < fused.length; i++)
            if (composite[i] != null)
              assertArrayEquals(composite[i].toDoubleArray(), fused[i].toDoubleArray(), 0.0, what[i] + " " + t + " on " + be.name() + (bias ? "" : " without bias"));
        }
  }

  @Test void gradientsByFiniteDifferences() {
    for (Backend be : new Backend[] {REF, FUSING}) {
      int before = FUSED_CALLS.get();
      check(be, t -> LinAlg.linearAdd(t[0], t[1], t[2], t[3]), Shape.of(2, 3, 4), Shape.of(5, 4), Shape.of(5), Shape.of(2, 3, 5));
      check(be, t -> LinAlg.linearAdd(t[0], t[1], null, t[2]), Shape.of(2, 3, 4), Shape.of(5, 4), Shape.of(2, 3, 5));
      check(be, t -> LinAlg.linearAdd(t[0], t[1], t[2], t[3]), Shape.of(4), Shape.of(3, 4), Shape.of(3), Shape.of(3));
      // x whose leading dims do not fold into one row stride (a permuted view: the op copies it), and a transposed x that folds
      check(be, t -> LinAlg.linearAdd(Views.permute(t[0], 1, 0, 2), t[1], t[2], t[3]), Shape.of(3, 2, 4), Shape.of(5, 4), Shape.of(5), Shape.of(2, 3, 5));
      check(be, t -> LinAlg.linearAdd(Views.transpose(t[0], 1, 2), t[1], null, t[2]), Shape.of(2, 4, 3), Shape.of(5, 4), Shape.of(2, 3, 5));
      // the fused path really ran on FUSING (once per forward: the analytic pass and every finite-difference evaluation)
      if (be == FUSING) assertTrue(FUSED_CALLS.get() - before > 5, "fused kernel calls: " + (FUSED_CALLS.get() - before));
    }
  }

  @Test void fusedPathGivesTheResidualTheOutputGradientAndMatchesTheComposite() {
    int before = FUSED_CALLS.get();
    Tensor[] fused = run(FUSING, DType.F64, true, x -> x, false), composite = run(REF, DType.F64, true, x -> x, true);
    assertEquals(before + 1, FUSED_CALLS.get(), "one fused call");
    Tensor g = upstream(FUSING, composite[0].shape(), DType.F64);
    assertArrayEquals(g.toDoubleArray(), fused[4].toDoubleArray(), 0.0, "residual's gradient is the output gradient");
    // f64 sums of 12 products in another order: within 1e-14 of each other
    String[] what = {"output", "grad x", "grad w", "grad b"};
    for (int i = 0; i < what.length; i++) assertClose(composite[i].toDoubleArray(), fused[i].toDoubleArray(), 1e-14, 1e-14, what[i]);
  }

  @Test void otherDtypesLayoutsAndAutocastTakeTheComposite() {
    int before = FUSED_CALLS.get();
    // an f32 residual stream with a bf16 projection: promoted to f32 as Arith.add would
    Tensor x = rand(FUSING, Shape.of(3, 8), DType.BF16, 1), w = rand(FUSING, Shape.of(6, 8), DType.BF16, 2), r = rand(FUSING, Shape.of(3, 6), DType.F32, 3);
    Tensor y = LinAlg.linearAdd(x, w, null, r);
    assertEquals(DType.F32, y.dtype());
    assertArrayEquals(Arith.add(r, LinAlg.linear(x, w, null)).toDoubleArray(), y.toDoubleArray(), 0.0);
    // a residual whose rows do not fold into one stride
    Tensor rp = Views.permute(rand(FUSING, Shape.of(4, 2, 6), DType.F32, 4), 1, 0, 2);
    Tensor x3 = rand(FUSING, Shape.of(2, 4, 8), DType.F32, 5), w3 = rand(FUSING, Shape.of(6, 8), DType.F32, 6);
    assertArrayEquals(Arith.add(rp, LinAlg.linear(x3, w3, null)).toDoubleArray(), LinAlg.linearAdd(x3, w3, null, rp).toDoubleArray(), 0.0);
    // autocast to bf16 with f32 operands and an f32 residual: linear computes in bf16, the add promotes to f32
    Tensor xf = rand(FUSING, Shape.of(3, 8), DType.F32, 7), wf = rand(FUSING, Shape.of(6, 8), DType.F32, 8);
    Tensor ya = Autocast.call(DType.BF16, () -> LinAlg.linearAdd(xf, wf, null, r));
    Tensor yc = Autocast.call(DType.BF16, () -> Arith.add(r, LinAlg.linear(xf, wf, null)));
    assertEquals(DType.F32, ya.dtype());
    assertArrayEquals(yc.toDoubleArray(), ya.toDoubleArray(), 0.0);
    assertEquals(before, FUSED_CALLS.get(), "no fused call for these");
    // autocast with a bf16 residual: fused, in bf16, as linear casts its operands
    Tensor rb = rand(FUSING, Shape.of(3, 6), DType.BF16, 9);
    Tensor yb = Autocast.call(DType.BF16, () -> LinAlg.linearAdd(xf, wf, null, rb));
    assertEquals(DType.BF16, yb.dtype());
    assertEquals(before + 1, FUSED_CALLS.get());
    // rounded once (fused: rd(s + r)) or twice (composite: rd(rd(s) + r)), s the exact product: with u = 2^-8, bf16's
    // unit roundoff, they differ by at most u·|s + r| + u·|rd(s) + r| + u·|s| ≈ u·(2·|out| + |s|) (the last term is
    // what cancellation leaves relative to a small output)
    Tensor lin = Autocast.call(DType.BF16, () -> LinAlg.linear(xf, wf, null));
    Tensor ybc = Arith.add(rb, lin);
    double[] f = yb.toDoubleArray(), c = ybc.toDoubleArray(), s = lin.toDoubleArray();
    for (int i = 0; i < f.length; i++)
      assertTrue(Math.abs(f[i] - c[i]) <= 1.01 * (2 * Math.abs(c[i]) + Math.abs(s[i])) / 256, "element " + i + ": fused " + f[i] + " composite " + c[i]);
  }

  @Test void badShapesAreClearErrors() {
    Tensor x = Tensor.zeros(Shape.of(2, 5, 4), DType.F32, REF), w = Tensor.zeros(Shape.of(3, 4), DType.F32, REF);
    TensorException e = assertThrows(TensorException.class, () -> LinAlg.linearAdd(x, w, null, Tensor.zeros(Shape.of(2, 5, 4), DType.F32, REF)));
    assertTrue(e.getMessage().startsWith("linearAdd: residual shape " + Shape.of(2, 5, 4)) && e.getMessage().contains("output's shape " + Shape.of(2, 5, 3)),
        e.getMessage());
    TensorException bad = assertThrows(TensorException.class, () -> LinAlg.linearAdd(x, Tensor.zeros(Shape.of(3, 5), DType.F32, REF), null,
        Tensor.zeros(Shape.of(2, 5, 3), DType.F32, REF)));
    assertTrue(bad.getMessage().startsWith("linearAdd: input features 4"), bad.getMessage());
    TensorException badBias = assertThrows(TensorException.class, () -> LinAlg.linearAdd(x, w, Tensor.zeros(Shape.of(4), DType.F32, REF),
        Tensor.zeros(Shape.of(2, 5, 3), DType.F32, REF)));
    assertTrue(badBias.getMessage().startsWith("linearAdd: bias must be [3]"), badBias.getMessage());
  }

  /** {y, gx, gw, gb, gr} of linearAdd (or the composite) on x [2, 5, 12] (through {@code view}), w [7, 12], b [7], r [2, 5, 7]. */
  private static Tensor[] run(Backend be, DType t, boolean bias, Function<Tensor, Tensor> view, boolean composite) {
    Tensor x = rand(be, Shape.of(2, 5, 12), t, 1).requiresGrad(true), w = rand(be, Shape.of(7, 12), t, 2).requiresGrad(true);
    Tensor b = bias ? rand(be, Shape.of(7), t, 3).requiresGrad(true) : null, r = rand(be, Shape.of(2, 5, 7), t, 4).requiresGrad(true);
    Tensor y = composite ? Arith.add(r, LinAlg.linear(view.apply(x), w, b)) : LinAlg.linearAdd(view.apply(x), w, b, r);
    Autograd.backward(y, upstream(be, y.shape(), t), false);
    return new Tensor[] {y, x.grad(), w.grad(), bias ? b.grad() : null, r.grad()};
  }

  private static Tensor upstream(Backend be, Shape s, DType t) { return rand(be, s, t, 99); }

  private static Tensor rand(Backend be, Shape s, DType t, long seed) {
    return Tensor.of(new Random(seed).doubles(s.numel(), -1, 1).toArray(), s, t, be);
  }
}
