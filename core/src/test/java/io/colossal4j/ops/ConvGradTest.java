package io.colossal4j.ops;

import static io.colossal4j.testing.GradCheck.assertClose;
import static io.colossal4j.testing.GradCheck.check;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.autograd.Autograd;
import io.colossal4j.backend.Backend;
import io.colossal4j.backend.Conv2dSpec;
import io.colossal4j.backend.Pool2dSpec;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;
import org.junit.jupiter.api.Test;

/**
 * conv2d and pooling: gradients against finite differences (f64, GradCheck's tolerance), forward values
 * derived by hand. Hand-derived values are sums of a few small integers or dyadic fractions, exact in
 * f64, so they are compared with a tolerance of 1e-12.
 */
class ConvGradTest {
  static final Backend CPU = CpuBackend.reference();
  static final double EXACT = 1e-12;

  static Tensor t(Shape s, double... v) { return Tensor.of(v, s, DType.F64, CPU); }

  static Tensor arange(double from, Shape s) {
    double[] v = new double[(int) s.numel()];
    for (int i = 0; i < v.length; i++) v[i] = from + i;
    return t(s, v);
  }

  // ------------------------------------------------------------- conv2d gradients

  @Test void convGradientsPlainWithBias() {
    check(CPU, a -> Conv.conv2d(a[0], a[1], a[2], 1, 1, 1, 1), Shape.of(2, 3, 5, 5), Shape.of(4, 3, 3, 3), Shape.of(4));
    check(CPU, a -> Conv.conv2d(a[0], a[1], null, 1, 0, 1, 1), Shape.of(1, 2, 4, 3), Shape.of(3, 2, 1, 2));
  }

  @Test void convGradientsStride2AsymmetricPadding() {
    var spec = new Conv2dSpec(2, 2, 0, 1, 1, 0, 1, 1, 1);
    check(CPU, a -> Conv.conv2d(a[0], a[1], a[2], spec), Shape.of(1, 2, 6, 5), Shape.of(3, 2, 3, 3), Shape.of(3));
    // unequal strides, non-square kernel, padding only on the right
    var spec2 = new Conv2dSpec(1, 2, 0, 0, 0, 2, 1, 1, 1);
    check(CPU, a -> Conv.conv2d(a[0], a[1], null, spec2), Shape.of(2, 2, 4, 5), Shape.of(2, 2, 2, 3));
  }

  @Test void convGradientsDilation() {
    check(CPU, a -> Conv.conv2d(a[0], a[1], null, 1, 2, 2, 1), Shape.of(1, 2, 7, 7), Shape.of(2, 2, 3, 3));
    check(CPU, a -> Conv.conv2d(a[0], a[1], null, new Conv2dSpec(2, 1, 1, 0, 0, 1, 2, 3, 1)), Shape.of(1, 1, 7, 8), Shape.of(2, 1, 2, 3));
  }

  @Test void convGradientsGroupsAndDepthwise() {
    check(CPU, a -> Conv.conv2d(a[0], a[1], a[2], 1, 1, 1, 2), Shape.of(1, 4, 5, 5), Shape.of(6, 2, 3, 3), Shape.of(6));
    // depthwise with channel multiplier 2, stride 2 (EfficientNet's reduction blocks)
    check(CPU, a -> Conv.conv2d(a[0], a[1], a[2], 2, 1, 1, 3), Shape.of(2, 3, 5, 5), Shape.of(6, 1, 3, 3), Shape.of(6));
    // depthwise 7x7, padding 3 (ConvNeXt)
    check(CPU, a -> Conv.conv2d(a[0], a[1], null, 1, 3, 1, 2), Shape.of(1, 2, 4, 4), Shape.of(2, 1, 7, 7));
  }

  @Test void convGradientsNonContiguousOperands() {
    // x given as [N, C, W, H] and transposed; w given as [kW, kH, Cin, Cout] and permuted
    check(CPU, a -> Conv.conv2d(Views.transpose(a[0], 2, 3), Views.permute(a[1], 3, 2, 1, 0), a[2], 2, 1, 1, 1),
        Shape.of(2, 2, 5, 4), Shape.of(3, 2, 2, 3), Shape.of(3));
    // a narrowed (offset) input window
    check(CPU, a -> Conv.conv2d(Views.narrow(a[0], 3, 1, 4), a[1], null, 1, 0, 1, 1), Shape.of(1, 2, 4, 6), Shape.of(2, 2, 2, 2));
  }

  @Test void convGradientsTfSamePadding() {
    check(CPU, a -> Conv.conv2dSame(a[0], a[1], a[2], 2, 1, 1), Shape.of(1, 2, 6, 5), Shape.of(2, 2, 3, 3), Shape.of(2));
  }

  // ------------------------------------------------------------- conv2d forward by hand

  @Test void convForwardByHand() {
    Tensor x = arange(1, Shape.of(1, 1, 3, 3)); // [[1,2,3],[4,5,6],[7,8,9]]
    Tensor w = t(Shape.of(1, 1, 2, 2), 1, 2, 3, 4);
    // out[i][j] = x[i][j] + 2 x[i][j+1] + 3 x[i+1][j] + 4 x[i+1][j+1]
    assertClose(new double[] {37, 47, 67, 77}, Conv.conv2d(x, w, null, 1, 0, 1, 1).toDoubleArray(), EXACT, 0, "plain");
    assertClose(new double[] {37.5, 47.5, 67.5, 77.5}, Conv.conv2d(x, w, t(Shape.of(1), 0.5), 1, 0, 1, 1).toDoubleArray(), EXACT, 0, "bias");
    // stride 2, padding 1: windows start at -1 and 1; (0,0) sees only x[0][0]*4, (0,1) sees 2*3 + 3*4, ...
    assertClose(new double[] {4, 18, 36, 77}, Conv.conv2d(x, w, null, 2, 1, 1, 1).toDoubleArray(), EXACT, 0, "stride 2 pad 1");
    // dilation 2: the four corners 1*1 + 3*2 + 7*3 + 9*4
    assertClose(new double[] {64}, Conv.conv2d(x, w, null, 1, 0, 2, 1).toDoubleArray(), EXACT, 0, "dilation 2");
  }

  @Test void groupedConvKeepsChannelsApart() {
    Tensor x = arange(1, Shape.of(1, 2, 2, 2));
    Tensor w = t(Shape.of(2, 1, 1, 1), 2, -1); // depthwise 1x1: channel 0 doubled, channel 1 negated
    assertClose(new double[] {2, 4, 6, 8, -5, -6, -7, -8}, Conv.conv2d(x, w, null, 1, 0, 1, 2).toDoubleArray(), EXACT, 0, "depthwise");
  }

  @Test void tfSamePaddingPutsTheExtraCellBottomRight() {
    assertEquals(new Conv2dSpec(2, 2, 1, 1, 1, 1, 1, 1, 1), Conv.samePadding(5, 5, 3, 3, 2, 1, 1)); // total 2: 1 + 1
    assertEquals(new Conv2dSpec(2, 2, 0, 1, 0, 1, 1, 1, 1), Conv.samePadding(224, 224, 3, 3, 2, 1, 1)); // total 1: 0 + 1
    assertEquals(new Conv2dSpec(1, 1, 2, 2, 1, 2, 1, 1, 4), Conv.samePadding(7, 6, 5, 4, 1, 1, 4)); // 4x3 total
    assertEquals(new Conv2dSpec(2, 2, 1, 2, 0, 0, 1, 1, 1), Conv.samePadding(8, 3, 5, 1, 2, 1, 1)); // 8/2: 3*2+5-8 = 3
    // 4x4 arange, 3x3 ones, stride 2: pad 0 top/left, 1 bottom/right; window sums 45, 2+3+6+7+10+11, ...
    Tensor x = arange(0, Shape.of(1, 1, 4, 4));
    Tensor ones = Tensor.full(Shape.of(1, 1, 3, 3), DType.F64, CPU, 1);
    assertClose(new double[] {45, 39, 66, 50}, Conv.conv2dSame(x, ones, null, 2, 1, 1).toDoubleArray(), EXACT, 0, "same");
  }

  @Test void convInF32MatchesF64() {
    Tensor x = arange(-3, Shape.of(1, 2, 3, 3)), w = arange(-5, Shape.of(2, 2, 2, 2));
    double[] ref = Conv.conv2d(x, w, null, 1, 1, 1, 1).toDoubleArray();
    double[] f32 = Conv.conv2d(Arith.cast(x, DType.F32), Arith.cast(w, DType.F32), null, 1, 1, 1, 1).toDoubleArray();
    assertClose(ref, f32, 0, 0, "small integers are exact in f32");
  }

  // ------------------------------------------------------------- pooling

  static final double[] POOL_X = {1, 5, 2, 0, 3, 4, 8, 7, 9, 6, 1, 2, 0, 3, 4, 4};

  @Test void maxPoolValuesAndGradientRouting() {
    Tensor x = t(Shape.of(1, 1, 4, 4), POOL_X).requiresGrad(true);
    Tensor y = Conv.maxPool2d(x, 2, 2, 0);
    assertClose(new double[] {5, 8, 9, 4}, y.toDoubleArray(), EXACT, 0, "max 2x2");
    Autograd.backward(Reduce.sum(y));
    // maxima at flat 1, 6, 8; the tie 4/4 in the last window goes to the first (14), as PyTorch
    double[] g = new double[16];
    g[1] = g[6] = g[8] = g[14] = 1;
    assertClose(g, x.grad().toDoubleArray(), EXACT, 0, "max pool gradient");
  }

  @Test void maxPoolPaddedOverlappingWindows() {
    // ResNet's stem pool: kernel 3, stride 2, padding 1; windows overlap, so 8 (flat 6) wins twice
    Tensor x = t(Shape.of(1, 1, 4, 4), POOL_X).requiresGrad(true);
    Tensor y = Conv.maxPool2d(x, 3, 2, 1);
    assertClose(new double[] {5, 8, 9, 8}, y.toDoubleArray(), EXACT, 0, "max 3x3 s2 p1");
    Autograd.backward(Reduce.sum(y));
    double[] g = new double[16];
    g[1] = 1;
    g[6] = 2;
    g[8] = 1;
    assertClose(g, x.grad().toDoubleArray(), EXACT, 0, "overlapping windows accumulate");
  }

  @Test void maxPoolPropagatesNaNAsPyTorch() {
    // a NaN replaces the running maximum, so the window's output is NaN and its gradient goes there
    Tensor x = t(Shape.of(1, 1, 2, 2), 1, Double.NaN, 3, 2).requiresGrad(true);
    Tensor y = Conv.maxPool2d(x, 2, 2, 0);
    assertTrue(Double.isNaN(y.item()), "NaN propagates, got " + y.item());
    Autograd.backward(y);
    assertClose(new double[] {0, 1, 0, 0}, x.grad().toDoubleArray(), 0, 0, "gradient to the NaN");
  }

  @Test void maxPoolCeilModeKeepsThePartialWindow() {
    Tensor x = arange(1, Shape.of(1, 1, 5, 5));
    Tensor y = Conv.maxPool2d(x, Pool2dSpec.of(2, 2, 0, true, true));
    assertEquals(Shape.of(1, 1, 3, 3), y.shape());
    assertClose(new double[] {7, 9, 10, 17, 19, 20, 22, 24, 25}, y.toDoubleArray(), EXACT, 0, "ceil mode");
  }

  @Test void avgPoolDivisors() {
    Tensor x = arange(1, Shape.of(1, 1, 3, 3));
    // kernel 2, stride 2, padding 1: windows hold {1}, {2,3}, {4,7}, {5,6,8,9}
    assertClose(new double[] {0.25, 1.25, 2.75, 7}, Conv.avgPool2d(x, Pool2dSpec.of(2, 2, 1, false, true)).toDoubleArray(), EXACT, 0, "count_include_pad");
    assertClose(new double[] {1, 2.5, 5.5, 7}, Conv.avgPool2d(x, Pool2dSpec.of(2, 2, 1, false, false)).toDoubleArray(), EXACT, 0, "exclude pad");
    // ceil mode: the windows past the edge are cut at the input, so {3,6}/2, {7,8}/2, {9}/1 in both modes
    assertClose(new double[] {3, 4.5, 7.5, 9}, Conv.avgPool2d(x, Pool2dSpec.of(2, 2, 0, true, true)).toDoubleArray(), EXACT, 0, "ceil mode");
  }

  @Test void poolGradients() {
    check(CPU, a -> Conv.maxPool2d(a[0], 3, 2, 1), Shape.of(2, 3, 5, 5));
    check(CPU, a -> Conv.maxPool2d(a[0], Pool2dSpec.of(2, 2, 0, true, true)), Shape.of(1, 2, 5, 5));
    check(CPU, a -> Conv.maxPool2d(Views.transpose(a[0], 2, 3), new Pool2dSpec(2, 3, 1, 2, 1, 1, false, true)), Shape.of(1, 2, 6, 5));
    for (boolean ceil : new boolean[] {false, true})
      for (boolean include : new boolean[] {false, true})
        check(CPU, a -> Conv.avgPool2d(a[0], Pool2dSpec.of(3, 2, 1, ceil, include)), Shape.of(1, 2, 6, 6));
    check(CPU, a -> Conv.avgPool2d(Views.transpose(a[0], 2, 3), new Pool2dSpec(3, 2, 2, 1, 1, 0, false, false)), Shape.of(2, 1, 5, 4));
  }

  @Test void adaptiveAvgPoolBins() {
    // 5 -> 3: bins [0,2), [1,4), [3,5)
    Tensor x = t(Shape.of(1, 1, 1, 5), 1, 2, 4, 8, 16);
    assertClose(new double[] {1.5, 14.0 / 3, 12}, Conv.adaptiveAvgPool2d(x, 1, 3).toDoubleArray(), EXACT, 0, "5 -> 3");
    Tensor y = arange(0, Shape.of(1, 1, 4, 4));
    assertClose(new double[] {2.5, 4.5, 10.5, 12.5}, Conv.adaptiveAvgPool2d(y, 2, 2).toDoubleArray(), EXACT, 0, "4 -> 2");
    Tensor global = Conv.adaptiveAvgPool2d(y, 1, 1);
    assertEquals(Shape.of(1, 1, 1, 1), global.shape());
    assertClose(new double[] {7.5}, global.toDoubleArray(), EXACT, 0, "global");
  }

  @Test void adaptiveAvgPoolGradients() {
    check(CPU, a -> Conv.adaptiveAvgPool2d(a[0], 3, 4), Shape.of(1, 2, 5, 7));
    check(CPU, a -> Conv.adaptiveAvgPool2d(a[0], 2, 3), Shape.of(2, 1, 4, 6));
    check(CPU, a -> Conv.adaptiveAvgPool2d(Views.transpose(a[0], 2, 3), 1, 1), Shape.of(2, 3, 4, 3));
  }

  // ------------------------------------------------------------- bad input

  @Test void badInputNamesShapesAndWhatIsValid() {
    Tensor x = Tensor.zeros(Shape.of(1, 4, 5, 5), DType.F32, CPU);
    var e = assertThrows(TensorException.class, () -> Conv.conv2d(x, Tensor.zeros(Shape.of(6, 3, 3, 3), DType.F32, CPU), null, 1, 1, 1, 2));
    assertTrue(e.getMessage().contains("groups=2") && e.getMessage().contains("[6, 3, 3, 3]"), e.getMessage());
    var small = assertThrows(TensorException.class, () -> Conv.conv2d(x, Tensor.zeros(Shape.of(2, 4, 7, 7), DType.F32, CPU), null, 1, 0, 1, 1));
    assertTrue(small.getMessage().contains("empty output"), small.getMessage());
    var bias = assertThrows(TensorException.class, () -> Conv.conv2d(x, Tensor.zeros(Shape.of(2, 4, 1, 1), DType.F32, CPU), Tensor.zeros(Shape.of(3), DType.F32, CPU), 1, 0, 1, 1));
    assertTrue(bias.getMessage().contains("bias must be [2]"), bias.getMessage());
    var rank = assertThrows(TensorException.class, () -> Conv.maxPool2d(Tensor.zeros(Shape.of(4, 5), DType.F32, CPU), 2, 2, 0));
    assertTrue(rank.getMessage().contains("[N, C, H, W]"), rank.getMessage());
    var dtype = assertThrows(TensorException.class, () -> Conv.conv2d(x, Tensor.zeros(Shape.of(2, 4, 1, 1), DType.F64, CPU), null, 1, 0, 1, 1));
    assertTrue(dtype.getMessage().contains("F64"), dtype.getMessage());
  }
}
