package io.colossal4j.ops;

import static io.colossal4j.testing.GradCheck.assertClose;

import io.colossal4j.backend.Backend;
import io.colossal4j.backend.Conv2dSpec;
import io.colossal4j.backend.Pool2dSpec;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.ops.Resize.Mode;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.snakeyaml.engine.v2.api.Load;
import org.snakeyaml.engine.v2.api.LoadSettings;
import org.snakeyaml.engine.v2.schema.JsonSchema;

/**
 * Forward outputs against PyTorch 2.11 (CPU, float64), written by scripts/golden/conv_norm_resize.py into
 * golden/conv_norm_resize.json. Inputs are the closed form sin(a*i + b) of the flat index, rebuilt here.
 * Both sides compute in f64 and differ only in summation order, so agreement is expected to ~1e-15;
 * the tolerance 1e-12 leaves room for that while any wrong window, tap or weight is off by far more.
 */
class ConvNormResizeGoldenTest {
  static final Backend CPU = CpuBackend.reference();
  static final double TOL = 1e-12;
  static final Map<String, List<Number>> GOLDEN = load();

  @SuppressWarnings("unchecked")
  static Map<String, List<Number>> load() {
    try (InputStream in = ConvNormResizeGoldenTest.class.getResourceAsStream("/golden/conv_norm_resize.json")) {
      var loader = new Load(LoadSettings.builder().setSchema(new JsonSchema()).build());
      return (Map<String, List<Number>>) loader.loadFromInputStream(in);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static void assertGolden(String name, Tensor actual, double tol) {
    List<Number> g = GOLDEN.get(name);
    if (g == null) throw new AssertionError("no golden entry " + name);
    double[] expected = g.stream().mapToDouble(Number::doubleValue).toArray();
    assertClose(expected, actual.toDoubleArray(), tol, tol, name);
  }

  /** x[i] = sin(a*i + b) over the row-major flat index, as the script's wave(). */
  static Tensor wave(Shape s, double a, double b) {
    double[] v = new double[(int) s.numel()];
    for (int i = 0; i < v.length; i++) v[i] = Math.sin(a * i + b);
    return Tensor.of(v, s, DType.F64, CPU);
  }

  @Test void convolution() {
    Tensor x = wave(Shape.of(2, 4, 7, 6), 0.37, 0.1), w = wave(Shape.of(6, 2, 3, 2), 0.23, 0.5), b = wave(Shape.of(6), 0.9, 0.2);
    // F.pad(x, [1, 0, 0, 2]): left 1, bottom 2; stride (2, 1), dilation (1, 2), groups 2
    var spec = new Conv2dSpec(2, 1, 0, 2, 1, 0, 1, 2, 2);
    assertGolden("conv_mixed", Conv.conv2d(x, w, b, spec), TOL);
    Tensor xd = wave(Shape.of(1, 3, 6, 6), 0.31, 0.3), wd = wave(Shape.of(6, 1, 3, 3), 0.17, 0.4);
    assertGolden("conv_depthwise", Conv.conv2d(xd, wd, null, 2, 1, 1, 3), TOL);
  }

  @Test void pooling() {
    Tensor x = wave(Shape.of(1, 2, 5, 5), 0.41, 0.0);
    assertGolden("max_pool_ceil", Conv.maxPool2d(x, Pool2dSpec.of(2, 2, 0, true, true)), 0);
    assertGolden("max_pool_k3s2p1", Conv.maxPool2d(x, 3, 2, 1), 0);
    assertGolden("avg_pool_ceil_pad_incl", Conv.avgPool2d(x, Pool2dSpec.of(3, 2, 1, true, true)), TOL);
    assertGolden("avg_pool_ceil_pad_excl", Conv.avgPool2d(x, Pool2dSpec.of(3, 2, 1, true, false)), TOL);
    assertGolden("adaptive_avg_3x4", Conv.adaptiveAvgPool2d(wave(Shape.of(1, 2, 5, 7), 0.29, 0.7), 3, 4), TOL);
  }

  @Test void interpolation() {
    Tensor x = wave(Shape.of(1, 2, 5, 7), 0.29, 0.7);
    int[][] sizes = {{3, 9}, {8, 11}};
    for (Mode mode : new Mode[] {Mode.BILINEAR, Mode.BICUBIC})
      for (boolean aligned : new boolean[] {true, false})
        for (int[] s : sizes) {
          String tag = mode.name().toLowerCase() + "_" + (aligned ? "aligned" : "halfpixel");
          assertGolden(tag + "_" + s[0] + "x" + s[1], Resize.interpolate(x, s[0], s[1], mode, aligned), TOL);
          assertGolden(tag + "_aa_" + s[0] + "x" + s[1], Resize.interpolateAntialiased(x, s[0], s[1], mode, aligned), TOL);
        }
    for (int[] s : sizes) assertGolden("nearest_" + s[0] + "x" + s[1], Resize.interpolate(x, s[0], s[1], Mode.NEAREST, false), 0);
    double[] ramp = new double[100];
    for (int i = 0; i < 100; i++) ramp[i] = i;
    Tensor r = Tensor.of(ramp, Shape.of(1, 1, 1, 100), DType.F32, CPU);
    assertGolden("nearest_100_to_37_f32", Resize.interpolate(r, 1, 37, Mode.NEAREST, false), 0);
  }

  @Test void normalisation() {
    Tensor x = wave(Shape.of(2, 4, 3, 3), 0.53, 0.2);
    Tensor w = wave(Shape.of(4), 0.7, 0.1), b = wave(Shape.of(4), 0.3, 0.9);
    assertGolden("group_norm_2", Norm.groupNorm(x, 2, w, b, 1e-5), TOL);
    assertGolden("layer_norm_channels", Norm.layerNorm2d(x, w, b, 1e-6), TOL);
    assertGolden("rms_norm", Norm.rmsNorm(x, wave(Shape.of(3), 0.6, 0.3), 1e-6), TOL);
    Tensor var = Arith.addScalar(Arith.square(wave(Shape.of(4), 0.5, 0.4)), 1);
    var running = new Norm.RunningStats(wave(Shape.of(4), 0.8, 0.0), var);
    assertGolden("batch_norm_train", Norm.batchNormTrain(x, w, b, running, 0.1, 1e-5), TOL);
    assertGolden("batch_norm_running_mean", running.mean(), TOL);
    assertGolden("batch_norm_running_var", running.var(), TOL);
    // PyTorch's eval call ran after the training call had updated the statistics, as here
    assertGolden("batch_norm_eval", Norm.batchNormEval(x, w, b, running, 1e-5), TOL);
  }
}
