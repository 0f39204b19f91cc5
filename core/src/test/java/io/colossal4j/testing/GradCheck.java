package io.colossal4j.testing;

import static org.junit.jupiter.api.Assertions.fail;

import io.colossal4j.autograd.Autograd;
import io.colossal4j.backend.Backend;
import io.colossal4j.ops.Arith;
import io.colossal4j.ops.Reduce;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.Random;
import java.util.function.Function;

/**
 * Checks an op's backward against central finite differences in f64.
 *
 * <p>The function's output y is reduced to L = sum(y * r) with a fixed random r, so every output element
 * contributes with a distinct weight. Inputs are fresh contiguous f64 leaves; the function may take views
 * of them (transpose, narrow, expand) to exercise non-contiguous paths. With h = 1e-6 the central
 * difference has truncation error O(h^2 f''') ~ 1e-12 and rounding error ~ eps*|L|/h ~ 1e-10, so a tolerance
 * of 1e-6 (absolute + relative to the gradient's scale) leaves a wide margin while catching any wrong rule.
 */
public final class GradCheck {
  private GradCheck() {}

  public static final double H = 1e-6;
  public static final double TOL = 1e-6;

  public static void check(Backend backend, Function<Tensor[], Tensor> f, Shape... shapes) {
    check(backend, 42, f, shapes);
  }

  public static void check(Backend backend, long seed, Function<Tensor[], Tensor> f, Shape... shapes) {
    Random rnd = new Random(seed);
    double[][] data = new double[shapes.length][];
    for (int i = 0; i < shapes.length; i++) {
      data[i] = new double[(int) shapes[i].numel()];
      for (int j = 0; j < data[i].length; j++) data[i][j] = rnd.nextGaussian();
    }
    checkAt(backend, seed, f, shapes, data);
  }

  /** Checks at given input values (for ops with kinks, choose points away from them). */
  public static void checkAt(Backend backend, long seed, Function<Tensor[], Tensor> f, Shape[] shapes, double[][] data) {
    Tensor[] leaves = leaves(backend, shapes, data, true);
    Tensor y = f.apply(leaves);
    double[] r = new Random(seed + 1).doubles(y.numel(), -1, 1).toArray();
    Tensor rt = Tensor.of(r, y.shape(), DType.F64, backend);
    Tensor loss = Reduce.sum(Arith.mul(y, rt));
    Autograd.backward(loss);
    for (int i = 0; i < shapes.length; i++) {
      double[] analytic = leaves[i].grad() == null ? new double[data[i].length] : leaves[i].grad().toDoubleArray();
      double scale = 1e-3;
      for (double v : analytic) scale = Math.max(scale, Math.abs(v));
      for (int j = 0; j < data[i].length; j++) {
        double keep = data[i][j];
        data[i][j] = keep + H;
        double up = lossAt(backend, f, shapes, data, rt);
        data[i][j] = keep - H;
        double down = lossAt(backend, f, shapes, data, rt);
        data[i][j] = keep;
        double numeric = (up - down) / (2 * H);
        if (Math.abs(numeric - analytic[j]) > TOL * (1 + scale))
          fail("input " + i + " " + shapes[i] + " element " + j + ": analytic " + analytic[j] + " vs numeric " + numeric);
      }
    }
  }

  private static double lossAt(Backend backend, Function<Tensor[], Tensor> f, Shape[] shapes, double[][] data, Tensor rt) {
    Tensor y = f.apply(leaves(backend, shapes, data, false));
    return Reduce.sum(Arith.mul(y, rt)).item();
  }

  private static Tensor[] leaves(Backend backend, Shape[] shapes, double[][] data, boolean grad) {
    Tensor[] t = new Tensor[shapes.length];
    for (int i = 0; i < shapes.length; i++) t[i] = Tensor.of(data[i], shapes[i], DType.F64, backend).requiresGrad(grad);
    return t;
  }

  /** Asserts two arrays agree within atol + rtol*|expected|, naming the first element that does not. */
  public static void assertClose(double[] expected, double[] actual, double atol, double rtol, String what) {
    if (expected.length != actual.length) fail(what + ": length " + actual.length + " != expected " + expected.length);
    for (int i = 0; i < expected.length; i++) {
      double e = expected[i], a = actual[i];
      if (Double.isNaN(e) && Double.isNaN(a)) continue;
      if (!(Math.abs(e - a) <= atol + rtol * Math.abs(e))) fail(what + ": element " + i + " is " + a + ", expected " + e);
    }
  }
}
