package io.colossal4j.data;

import io.colossal4j.tensor.Shape;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.stream.Stream;
import javax.imageio.ImageIO;

/**
 * A directory with one subdirectory per class ({@code root/cat/001.png}, {@code root/dog/a.jpg}); classes are
 * the subdirectory names in sorted order, labels their positions. PNG and JPEG files are decoded on access with
 * javax.imageio into [channels, height, width] floats in [0, 1] (channels 1 = luminance, 3 = RGB) and resized
 * bilinearly to the given size. The file list is fixed at construction; decoding is thread-safe.
 */
public final class ImageFolder implements Dataset {
  private final Path root;
  private final List<String> classes;
  private final List<Path> files;
  private final int[] labels;
  private final Shape shape;

  public ImageFolder(Path root, int channels, int height, int width) {
    if (channels != 1 && channels != 3) throw new DataException("image folder: channels must be 1 or 3, got " + channels);
    if (height < 1 || width < 1) throw new DataException("image folder: image size must be >= 1, got " + height + "x" + width);
    if (!Files.isDirectory(root))
      throw new DataException("image folder not found: " + root.toAbsolutePath() + " (expected one subdirectory of images per class)");
    this.root = root;
    this.shape = Shape.of(channels, height, width);
    this.classes = list(root, Files::isDirectory).stream().map(p -> p.getFileName().toString()).toList();
    List<Path> fs = new ArrayList<>();
    List<Integer> ls = new ArrayList<>();
    for (int c = 0; c < classes.size(); c++)
      for (Path f : list(root.resolve(classes.get(c)), ImageFolder::isImage)) {
        fs.add(f);
        ls.add(c);
      }
    if (fs.isEmpty())
      throw new DataException("image folder " + root + " has no .png/.jpg/.jpeg files in class subdirectories (found classes " + classes + ")");
    this.files = List.copyOf(fs);
    this.labels = ls.stream().mapToInt(Integer::intValue).toArray();
  }

  public List<String> classes() { return classes; }

  @Override public int size() { return files.size(); }

  @Override public Sample get(int index) {
    checkIndex(index);
    Path f = files.get(index);
    BufferedImage img;
    try {
      img = ImageIO.read(f.toFile());
    } catch (IOException e) {
      throw new DataException("could not decode image " + f + ": " + e.getMessage(), e);
    }
    if (img == null) throw new DataException("could not decode image " + f + ": not a PNG or JPEG file javax.imageio can read");
    int c = shape.dim(0), h = img.getHeight(), w = img.getWidth();
    float[] x = new float[c * h * w];
    for (int y = 0; y < h; y++)
      for (int i = 0; i < w; i++) {
        int rgb = img.getRGB(i, y);
        float r = ((rgb >> 16) & 0xff) / 255f, g = ((rgb >> 8) & 0xff) / 255f, b = (rgb & 0xff) / 255f;
        if (c == 1) x[y * w + i] = 0.299f * r + 0.587f * g + 0.114f * b; // ITU-R 601 luma, as PIL's convert("L")
        else {
          x[y * w + i] = r;
          x[(h + y) * w + i] = g;
          x[(2 * h + y) * w + i] = b;
        }
      }
    if (h != shape.dim(1) || w != shape.dim(2)) x = Transforms.bilinear(x, c, h, w, shape.dim(1), shape.dim(2));
    return new Sample(x, shape, labels[index]);
  }

  @Override public Shape sampleShape() { return shape; }

  @Override public int numClasses() { return classes.size(); }

  @Override public String describe() { return "image folder " + root + ", " + size() + " images in " + classes.size() + " classes"; }

  private static boolean isImage(Path p) {
    String n = p.getFileName().toString().toLowerCase(Locale.ROOT);
    return Files.isRegularFile(p) && (n.endsWith(".png") || n.endsWith(".jpg") || n.endsWith(".jpeg"));
  }

  private static List<Path> list(Path dir, java.util.function.Predicate<Path> keep) {
    try (Stream<Path> s = Files.list(dir)) {
      return s.filter(keep).sorted().toList();
    } catch (IOException e) {
      throw new DataException("could not list " + dir + ": " + e, e);
    }
  }
}
