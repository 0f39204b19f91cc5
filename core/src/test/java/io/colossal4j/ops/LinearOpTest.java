package io.colossal4j.ops;

import static io.colossal4j.testing.GradCheck.assertClose;
import static io.colossal4j.testing.GradCheck.check;

import io.colossal4j.autograd.Autograd;
import io.colossal4j.backend.Backend;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;
import java.util.Random;
import java.util.function.Function;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * The linear op (leading dims folded into one GEMM, bias accumulated into the output, one-GEMM weight
 * gradient): finite-difference gradients in f64 for contiguous, strided and 1-D inputs, and the fast CPU
 * kernels against the composite it replaces, matmul(x, wᵀ) + b, run on the scalar reference.
 */
class LinearOpTest {
  static final Backend REF = CpuBackend.reference();
  static final CpuBackend FAST = CpuBackend.create(2);

  @AfterAll static void close() { FAST.close(); }

  @Test void gradientsByFiniteDifferences() {
    check(REF, t -> LinAlg.linear(t[0], t[1], t[2]), Shape.of(2, 3, 4), Shape.of(5, 4), Shape.of(5));
    check(REF, t -> LinAlg.linear(t[0], t[1], null), Shape.of(4), Shape.of(3, 4));
    // x whose leading dims do not fold into one row stride (a permuted view): the op copies it
    check(REF, t -> LinAlg.linear(Views.permute(t[0], 1, 0, 2), t[1], t[2]), Shape.of(3, 2, 4), Shape.of(5, 4), Shape.of(5));
    // x a transposed view whose rows fold (stride 1 along features is not required)
    check(REF, t -> LinAlg.linear(Views.transpose(t[0], 1, 2), t[1], t[2]), Shape.of(2, 4, 3), Shape.of(5, 4), Shape.of(5));
  }

  /**
   * Fast f32 kernels against the double-precision composite. Tolerance: dot products of length ≤ 130 over
   * inputs in [-1, 1] (and upstream gradients in [-1, 1]), each f32 rounding ≤ 2^-24 relative, so errors stay
   * below 130·2^-24·(sum of |terms|) ≲ 1e-4 absolute; 2e-4 absolute plus 1e-5 relative.
   */
  @Test void fastKernelsMatchTheCompositeOnTheReference() {
    compare(Shape.of(64, 17, 64), 192, t -> t, true);
    compare(Shape.of(5, 7, 130), 33, t -> t, false);
    compare(Shape.of(7, 3, 9), 16, t -> Views.permute(t, 1, 0, 2), true);
    compare(Shape.of(1, 1, 8), 4, t -> t, true);
  }

  private static void compare(Shape xShape, int out, Function<Tensor, Tensor> view, boolean bias) {
    Random rnd = new Random(xShape.numel() * 31 + out);
    int in = xShape.dim(xShape.rank() - 1);
    float[] x = rand(rnd, xShape.numel()), w = rand(rnd, (long) out * in), b = rand(rnd, out);
    Tensor[] fast = run(FAST, x, xShape, w, b, out, view, bias, false), ref = run(REF, x, xShape, w, b, out, view, bias, true);
    String[] what = {"output", "grad x", "grad w", "grad b"};
    for (int i = 0; i < fast.length; i++)
      if (ref[i] != null) assertClose(ref[i].toDoubleArray(), fast[i].toDoubleArray(), 2e-4, 1e-5, what[i] + " for x " + xShape + " -> " + out);
  }

  private static Tensor[] run(Backend be, float[] xd, Shape xShape, float[] wd, float[] bd, int out, Function<Tensor, Tensor> view,
                              boolean bias, boolean composite) {
    int in = xShape.dim(xShape.rank() - 1);
    Tensor x = Tensor.of(xd, xShape, be).requiresGrad(true), w = Tensor.of(wd, Shape.of(out, in), be).requiresGrad(true);
    Tensor b = bias ? Tensor.of(bd, Shape.of(out), be).requiresGrad(true) : null;
    Tensor xv = view.apply(x);
    Tensor y = composite ? (bias ? Arith.add(LinAlg.matmul(xv, Views.transpose(w, 0, 1)), b) : LinAlg.matmul(xv, Views.transpose(w, 0, 1)))
        : LinAlg.linear(xv, w, b);
    float[] g = rand(new Random(7), y.numel());
    Autograd.backward(y, Tensor.of(g, y.shape(), be), false);
    return new Tensor[] {y, x.grad(), w.grad(), bias ? b.grad() : null};
  }

  private static float[] rand(Random rnd, long n) {
    float[] a = new float[Math.toIntExact(n)];
    for (int i = 0; i < a.length; i++) a[i] = (float) (2 * rnd.nextDouble() - 1);
    return a;
  }

  @Test void badShapesAreClearErrors() {
    Tensor x = Tensor.zeros(Shape.of(2, 4), io.colossal4j.tensor.DType.F32, REF), w = Tensor.zeros(Shape.of(3, 5), io.colossal4j.tensor.DType.F32, REF);
    assertThrows(TensorException.class, () -> LinAlg.linear(x, w, null));
    assertThrows(TensorException.class, () -> LinAlg.linear(x, Tensor.zeros(Shape.of(3, 4), io.colossal4j.tensor.DType.F32, REF),
        Tensor.zeros(Shape.of(4), io.colossal4j.tensor.DType.F32, REF)));
  }
}
