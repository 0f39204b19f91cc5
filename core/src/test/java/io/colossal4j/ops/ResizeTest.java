package io.colossal4j.ops;

import static io.colossal4j.testing.GradCheck.assertClose;
import static io.colossal4j.testing.GradCheck.check;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.backend.Backend;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.ops.Resize.Mode;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;
import org.junit.jupiter.api.Test;

/**
 * pad, roll and interpolate: forward values derived by hand, gradients against finite differences (f64,
 * GradCheck's tolerance). The interpolation values below are sums of a few products of dyadic or small
 * rational weights with the inputs 0 and 3, derived in the comments; compared to 1e-12.
 */
class ResizeTest {
  static final Backend CPU = CpuBackend.reference();
  static final double EXACT = 1e-12;

  static Tensor t(Shape s, double... v) { return Tensor.of(v, s, DType.F64, CPU); }

  // ------------------------------------------------------------- pad

  @Test void padPlacesInputAndFillsValue() {
    Tensor x = t(Shape.of(2, 2), 1, 2, 3, 4);
    // (left 1, right 0) on the last dim, (top 0, bottom 1) on the first
    Tensor y = Resize.pad(x, 9, 1, 0, 0, 1);
    assertEquals(Shape.of(3, 3), y.shape());
    assertClose(new double[] {9, 1, 2, 9, 3, 4, 9, 9, 9}, y.toDoubleArray(), 0, 0, "pad");
    check(CPU, a -> Resize.pad(a[0], -1, 2, 1, 1, 0), Shape.of(2, 3, 2));
    check(CPU, a -> Resize.pad(Views.transpose(a[0], 0, 2), 0, 0, 3), Shape.of(2, 3, 4));
  }

  @Test void padRejectsNegativeAndTooManyPads() {
    Tensor x = t(Shape.of(2, 2), 1, 2, 3, 4);
    var neg = assertThrows(TensorException.class, () -> Resize.pad(x, 0, -1, 0));
    assertTrue(neg.getMessage().contains("negative"), neg.getMessage());
    var many = assertThrows(TensorException.class, () -> Resize.pad(x, 0, 1, 1, 1, 1, 1, 1));
    assertTrue(many.getMessage().contains("at most 2 dims"), many.getMessage());
  }

  // ------------------------------------------------------------- roll

  @Test void rollMovesElementsForward() {
    Tensor x = t(Shape.of(2, 3), 0, 1, 2, 3, 4, 5);
    assertClose(new double[] {2, 0, 1, 5, 3, 4}, Resize.roll(x, 1, 1).toDoubleArray(), 0, 0, "roll +1 on dim 1");
    assertClose(new double[] {1, 2, 0, 4, 5, 3}, Resize.roll(x, -4, -1).toDoubleArray(), 0, 0, "roll -4 = -1 mod 3");
    // rows swap, then columns move back by one (Swin rolls H and W together)
    assertClose(new double[] {4, 5, 3, 1, 2, 0}, Resize.roll(x, new int[] {1, -1}, new int[] {0, 1}).toDoubleArray(), 0, 0, "two dims");
    check(CPU, a -> Resize.roll(a[0], new int[] {-1, 2}, new int[] {1, 2}), Shape.of(1, 3, 4, 2));
    check(CPU, a -> Resize.roll(Views.transpose(a[0], 0, 1), 2, 0), Shape.of(2, 3));
  }

  // ------------------------------------------------------------- interpolate, by hand

  /** [0, 3] along W resized to 4 (H stays 1). */
  static double[] resize1x2(Mode mode, boolean alignCorners) {
    return Resize.interpolate(t(Shape.of(1, 1, 1, 2), 0, 3), 1, 4, mode, alignCorners).toDoubleArray();
  }

  @Test void bilinearByHand() {
    // aligned: sources 0, 1/3, 2/3, 1 -> 0, 1, 2, 3
    assertClose(new double[] {0, 1, 2, 3}, resize1x2(Mode.BILINEAR, true), EXACT, 0, "aligned");
    // half-pixel: sources (d + 0.5)/2 - 0.5 = -0.25 (clamped to 0), 0.25, 0.75, 1.25 (past the last pixel)
    assertClose(new double[] {0, 0.75, 2.25, 3}, resize1x2(Mode.BILINEAR, false), EXACT, 0, "half-pixel");
    // downsampling [0, 1, 2, 3] to 2: sources 0.5 and 2.5
    assertClose(new double[] {0.5, 2.5}, Resize.interpolate(t(Shape.of(1, 1, 1, 4), 0, 1, 2, 3), 1, 2, Mode.BILINEAR, false).toDoubleArray(), EXACT, 0, "down");
    // both dims: 2x2 -> 3x3 aligned puts the average of each pair (and of all four) between them
    Tensor sq = Resize.interpolate(t(Shape.of(1, 1, 2, 2), 0, 1, 2, 3), 3, 3, Mode.BILINEAR, true);
    assertClose(new double[] {0, 0.5, 1, 1, 1.5, 2, 2, 2.5, 3}, sq.toDoubleArray(), EXACT, 0, "2-D");
  }

  @Test void bicubicByHand() {
    // Keys kernel, A = -0.75: near(x) = 1.25x^3 - 2.25x^2 + 1, far(x) = -0.75x^3 + 3.75x^2 - 6x + 3.
    // Aligned, source 1/3: taps (0, 0, 3, 3) after border replication, so 3 * (near(2/3) + far(5/3))
    // = 3 * (10/27 - 1/18) = 17/18; source 2/3 is the mirror image, 3 - 17/18.
    assertClose(new double[] {0, 17.0 / 18, 3 - 17.0 / 18, 3}, resize1x2(Mode.BICUBIC, true), EXACT, 0, "aligned");
    // Half-pixel, sources -0.25, 0.25, 0.75, 1.25, not clamped for cubic:
    // -0.25: floor -1, t 0.75, only the last tap (index 1) sees 3: 3 * far(1.25) = 3 * -0.10546875
    // 0.25: t 0.25, taps 2 and 3 see 3: 3 * (near(0.75) + far(1.75)) = 3 * (0.26171875 - 0.03515625)
    // 0.75, 1.25: mirror images of 0.25 and -0.25 (3 minus them)
    double a = 3 * -0.10546875, b = 3 * (0.26171875 - 0.03515625);
    assertClose(new double[] {a, b, 3 - b, 3 - a}, resize1x2(Mode.BICUBIC, false), EXACT, 0, "half-pixel");
  }

  @Test void nearestByHand() {
    assertClose(new double[] {0, 0, 3, 3}, resize1x2(Mode.NEAREST, false), 0, 0, "nearest x2");
    // 7 -> 3 in f32, as PyTorch: floor(d * 7/3) = 0, 2, 4
    Tensor x = Tensor.of(new double[] {0, 1, 2, 3, 4, 5, 6}, Shape.of(1, 1, 1, 7), DType.F32, CPU);
    assertClose(new double[] {0, 2, 4}, Resize.interpolate(x, 1, 3, Mode.NEAREST, false).toDoubleArray(), 0, 0, "nearest 7 -> 3");
  }

  @Test void antialiasedDownsamplingWidensTheFilter() {
    // [0, 1, 2, 3] -> 2, bilinear: scale 2, so the triangle spans 2 pixels each side of centres 1 and 3.
    // Output 0 weighs pixels 0, 1, 2 by tri(0.25), tri(0.25), tri(0.75) = 3/7, 3/7, 1/7 after normalising;
    // output 1 weighs pixels 1, 2, 3 by 1/7, 3/7, 3/7.
    Tensor x = t(Shape.of(1, 1, 1, 4), 0, 1, 2, 3);
    assertClose(new double[] {5.0 / 7, 16.0 / 7}, Resize.interpolateAntialiased(x, 1, 2, Mode.BILINEAR, false).toDoubleArray(), EXACT, 0, "aa");
    check(CPU, a -> Resize.interpolateAntialiased(a[0], 2, 7, Mode.BICUBIC, false), Shape.of(1, 2, 5, 3));
    check(CPU, a -> Resize.interpolateAntialiased(Views.transpose(a[0], 2, 3), 3, 2, Mode.BILINEAR, true), Shape.of(1, 1, 5, 6));
    var nearest = assertThrows(TensorException.class, () -> Resize.interpolateAntialiased(x, 1, 2, Mode.NEAREST, false));
    assertTrue(nearest.getMessage().contains("NEAREST"), nearest.getMessage());
  }

  @Test void sameSizeIsTheIdentity() {
    Tensor x = t(Shape.of(1, 1, 2, 3), 1, 2, 3, 4, 5, 6);
    for (Mode m : Mode.values())
      for (boolean ac : m == Mode.NEAREST ? new boolean[] {false} : new boolean[] {false, true}) {
        assertClose(x.toDoubleArray(), Resize.interpolate(x, 2, 3, m, ac).toDoubleArray(), EXACT, 0, m + " " + ac);
        // only one dim resized: the other is left alone (identity weights)
        Tensor wide = Resize.interpolate(x, 2, 6, m, ac);
        assertClose(Resize.interpolate(Views.narrow(x, 2, 0, 1), 1, 6, m, ac).toDoubleArray(),
            Views.narrow(wide, 2, 0, 1).toDoubleArray(), EXACT, 0, "rows independent " + m);
      }
  }

  @Test void halfPrecisionResamplesInF32() {
    Tensor x = Tensor.of(new double[] {0, 3}, Shape.of(1, 1, 1, 2), DType.BF16, CPU);
    Tensor y = Resize.interpolate(x, 1, 4, Mode.BILINEAR, false);
    assertEquals(DType.BF16, y.dtype());
    assertClose(new double[] {0, 0.75, 2.25, 3}, y.toDoubleArray(), 0, 0, "dyadic values are exact in bf16");
  }

  // ------------------------------------------------------------- interpolate, gradients

  @Test void interpolateGradients() {
    for (Mode m : new Mode[] {Mode.BILINEAR, Mode.BICUBIC})
      for (boolean ac : new boolean[] {false, true}) {
        check(CPU, a -> Resize.interpolate(a[0], 5, 3, m, ac), Shape.of(1, 2, 3, 4));
        check(CPU, a -> Resize.interpolate(Views.transpose(a[0], 2, 3), 2, 6, m, ac), Shape.of(2, 1, 4, 3));
      }
    check(CPU, a -> Resize.interpolate(a[0], 4, 5, Mode.NEAREST, false), Shape.of(1, 2, 3, 4));
  }

  @Test void interpolateBadInput() {
    Tensor x = t(Shape.of(1, 1, 1, 2), 0, 3);
    var ac = assertThrows(TensorException.class, () -> Resize.interpolate(x, 1, 4, Mode.NEAREST, true));
    assertTrue(ac.getMessage().contains("align_corners"), ac.getMessage());
    var size = assertThrows(TensorException.class, () -> Resize.interpolate(x, 0, 4, Mode.BILINEAR, false));
    assertTrue(size.getMessage().contains("0x4"), size.getMessage());
    var rank = assertThrows(TensorException.class, () -> Resize.interpolate(t(Shape.of(2), 0, 3), 1, 4, Mode.BILINEAR, false));
    assertTrue(rank.getMessage().contains("[N, C, H, W]"), rank.getMessage());
  }
}
