package io.colossal4j.data;

import io.colossal4j.tensor.Rng;
import io.colossal4j.tensor.Shape;
import java.util.Arrays;

/**
 * The image transforms, on [C, H, W] samples. Semantics follow torchvision's tensor transforms:
 * {@link Normalize} is (x - mean[c]) / std[c]; {@link RandomCrop} zero-pads every side by {@code padding} and
 * takes a crop at a uniformly random offset; {@link HorizontalFlip} mirrors the width axis with probability
 * {@code p}; {@link Resize} is bilinear with half-pixel centres (align_corners=False, no antialiasing).
 */
public final class Transforms {
  private Transforms() {}

  public record Normalize(float[] mean, float[] std) implements Transform {
    public Normalize {
      if (mean.length == 0 || mean.length != std.length)
        throw new DataException("normalize: mean and std need the same non-zero length, got " + mean.length + " and " + std.length);
      for (float s : std) if (!(s > 0)) throw new DataException("normalize: std must be > 0, got " + Arrays.toString(std));
    }

    @Override public Sample apply(Sample s, Rng rng) {
      int c = s.shape().dim(0);
      if (mean.length != 1 && mean.length != c)
        throw new DataException("normalize: " + mean.length + " channel means for a sample of shape " + s.shape() + " (valid: 1 or " + c + ")");
      int plane = (int) (s.x().length / c);
      float[] out = new float[s.x().length];
      for (int ch = 0; ch < c; ch++) {
        float m = mean[mean.length == 1 ? 0 : ch], inv = 1f / std[std.length == 1 ? 0 : ch];
        for (int i = ch * plane; i < (ch + 1) * plane; i++) out[i] = (s.x()[i] - m) * inv;
      }
      return new Sample(out, s.shape(), s.label());
    }
  }

  public record RandomCrop(int height, int width, int padding) implements Transform {
    public RandomCrop {
      if (height < 1 || width < 1 || padding < 0)
        throw new DataException("random crop: need size >= 1 and padding >= 0, got " + height + "x" + width + " padding " + padding);
    }

    @Override public Sample apply(Sample s, Rng rng) {
      int[] d = chw("random crop", s);
      int ph = d[1] + 2 * padding, pw = d[2] + 2 * padding;
      if (height > ph || width > pw)
        throw new DataException("random crop: crop " + height + "x" + width + " is larger than the padded image " + ph + "x" + pw);
      int top = (int) Long.remainderUnsigned(rng.nextLong(), ph - height + 1L) - padding;
      int left = (int) Long.remainderUnsigned(rng.nextLong(), pw - width + 1L) - padding;
      float[] out = new float[d[0] * height * width];
      for (int c = 0; c < d[0]; c++)
        for (int y = 0; y < height; y++) {
          int sy = y + top;
          if (sy < 0 || sy >= d[1]) continue; // zero padding
          for (int x = 0; x < width; x++) {
            int sx = x + left;
            if (sx >= 0 && sx < d[2]) out[(c * height + y) * width + x] = s.x()[(c * d[1] + sy) * d[2] + sx];
          }
        }
      return new Sample(out, Shape.of(d[0], height, width), s.label());
    }
  }

  public record HorizontalFlip(double p) implements Transform {
    public HorizontalFlip {
      if (!(p >= 0 && p <= 1)) throw new DataException("horizontal flip: probability must be in [0, 1], got " + p);
    }

    @Override public Sample apply(Sample s, Rng rng) {
      int[] d = chw("horizontal flip", s);
      if (!(rng.nextDouble() < p)) return s;
      float[] out = new float[s.x().length];
      for (int row = 0; row < d[0] * d[1]; row++)
        for (int x = 0; x < d[2]; x++) out[row * d[2] + x] = s.x()[row * d[2] + d[2] - 1 - x];
      return new Sample(out, s.shape(), s.label());
    }
  }

  public record Resize(int height, int width) implements Transform {
    public Resize {
      if (height < 1 || width < 1) throw new DataException("resize: size must be >= 1, got " + height + "x" + width);
    }

    @Override public Sample apply(Sample s, Rng rng) {
      int[] d = chw("resize", s);
      if (d[1] == height && d[2] == width) return s;
      return new Sample(bilinear(s.x(), d[0], d[1], d[2], height, width), Shape.of(d[0], height, width), s.label());
    }
  }

  /** Bilinear resampling of a [c, h, w] array to [c, oh, ow], half-pixel centres, edges clamped. */
  static float[] bilinear(float[] in, int c, int h, int w, int oh, int ow) {
    float[] out = new float[c * oh * ow];
    for (int y = 0; y < oh; y++) {
      double sy = Math.max(0, (y + 0.5) * h / oh - 0.5);
      int y0 = Math.min((int) sy, h - 1), y1 = Math.min(y0 + 1, h - 1);
      double fy = sy - y0;
      for (int x = 0; x < ow; x++) {
        double sx = Math.max(0, (x + 0.5) * w / ow - 0.5);
        int x0 = Math.min((int) sx, w - 1), x1 = Math.min(x0 + 1, w - 1);
        double fx = sx - x0;
        for (int ch = 0; ch < c; ch++) {
          int base = ch * h * w;
          double top = in[base + y0 * w + x0] * (1 - fx) + in[base + y0 * w + x1] * fx;
          double bot = in[base + y1 * w + x0] * (1 - fx) + in[base + y1 * w + x1] * fx;
          out[(ch * oh + y) * ow + x] = (float) (top * (1 - fy) + bot * fy);
        }
      }
    }
    return out;
  }

  private static int[] chw(String what, Sample s) {
    if (s.shape().rank() != 3)
      throw new DataException(what + ": needs an image sample [C, H, W], got shape " + s.shape());
    return s.shape().toArray();
  }
}
