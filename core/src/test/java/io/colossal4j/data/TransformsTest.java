package io.colossal4j.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.tensor.Rng;
import io.colossal4j.tensor.Shape;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** Transforms against hand-derived values (torchvision's definitions). */
class TransformsTest {
  static Sample ramp(int c, int h, int w) {
    float[] x = new float[c * h * w];
    for (int i = 0; i < x.length; i++) x[i] = i;
    return new Sample(x, Shape.of(c, h, w), 3);
  }

  @Test void normalizePerChannel() {
    Sample s = new Transforms.Normalize(new float[] {1, 10}, new float[] {2, 4}).apply(ramp(2, 1, 2), new Rng(0));
    assertArrayEquals(new float[] {-0.5f, 0f, -2f, -1.75f}, s.x());
    assertEquals(3, s.label());
    var e = assertThrows(DataException.class, () -> new Transforms.Normalize(new float[] {0, 0, 0}, new float[] {1, 1, 1}).apply(ramp(2, 1, 2), new Rng(0)));
    assertTrue(e.getMessage().contains("3 channel means"), e.getMessage());
  }

  /** align_corners=False bilinear: 2x2 -> 4x4 as torch.nn.functional.interpolate gives it (derived by hand). */
  @Test void resizeBilinear() {
    Sample s = new Transforms.Resize(4, 4).apply(ramp(1, 2, 2), new Rng(0));
    assertArrayEquals(new float[] {0, .25f, .75f, 1, .5f, .75f, 1.25f, 1.5f, 1.5f, 1.75f, 2.25f, 2.5f, 2, 2.25f, 2.75f, 3}, s.x(), 1e-6f);
    Sample down = new Transforms.Resize(1, 2).apply(ramp(1, 2, 4), new Rng(0));
    assertArrayEquals(new float[] {2.5f, 4.5f}, down.x(), 1e-6f); // centres of 2x2 blocks: mean of {0,1,4,5} and {2,3,6,7}
  }

  @Test void flipMirrorsWidth() {
    Sample s = new Transforms.HorizontalFlip(1).apply(ramp(1, 2, 3), new Rng(0));
    assertArrayEquals(new float[] {2, 1, 0, 5, 4, 3}, s.x());
    Sample kept = new Transforms.HorizontalFlip(0).apply(ramp(1, 2, 3), new Rng(0));
    assertArrayEquals(ramp(1, 2, 3).x(), kept.x());
  }

  @Test void randomCropWithPaddingCoversEveryOffset() {
    Sample in = ramp(1, 3, 3);
    Set<String> crops = new HashSet<>();
    for (int k = 0; k < 400; k++) {
      Sample s = new Transforms.RandomCrop(3, 3, 1).apply(in, new Rng(9).fork(k));
      // Every crop is the image shifted by (dy, dx) in {-1, 0, 1}^2 with zeros shifted in.
      int dy = -2, dx = -2;
      for (int y = -1; y <= 1 && dy == -2; y++)
        for (int x = -1; x <= 1; x++) if (equalsShift(in, s, y, x)) { dy = y; dx = x; break; }
      assertNotEquals(-2, dy, "crop " + k + " is not a shift of the padded image");
      crops.add(dy + "," + dx);
    }
    assertEquals(9, crops.size(), "all 9 offsets occur");
  }

  private static boolean equalsShift(Sample in, Sample out, int dy, int dx) {
    for (int y = 0; y < 3; y++)
      for (int x = 0; x < 3; x++) {
        int sy = y + dy, sx = x + dx;
        float expect = sy < 0 || sy > 2 || sx < 0 || sx > 2 ? 0 : in.x()[sy * 3 + sx];
        if (out.x()[y * 3 + x] != expect) return false;
      }
    return true;
  }

  @Test void composeIsSeededPerStep() {
    Transform t = Transform.compose(List.of(new Transforms.RandomCrop(3, 3, 1), new Transforms.HorizontalFlip(0.5)));
    Sample a = t.apply(ramp(1, 3, 3), new Rng(1).fork(5)), b = t.apply(ramp(1, 3, 3), new Rng(1).fork(5));
    assertArrayEquals(a.x(), b.x());
    var e = assertThrows(DataException.class, () -> new Transforms.HorizontalFlip(0.5).apply(new Sample(new float[3], Shape.of(3), 0), new Rng(0)));
    assertTrue(e.getMessage().contains("[C, H, W]"), e.getMessage());
  }
}
