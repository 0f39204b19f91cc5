package io.colossal4j.data;

import io.colossal4j.tensor.Shape;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * MNIST and Fashion-MNIST from their four idx files ({@code train-images-idx3-ubyte}, {@code train-labels-idx1-ubyte},
 * {@code t10k-images-idx3-ubyte}, {@code t10k-labels-idx1-ubyte}), each plain or {@code .gz}. Samples are
 * [1, 28, 28] in [0, 1]; 10 classes.
 */
public final class Mnist {
  private Mnist() {}

  /** Where Debian's {@code dataset-fashion-mnist} package installs the files. */
  public static final Path FASHION_DEBIAN_DIR = Path.of("/usr/share/datasets/fashion-mnist");

  public static Dataset fashion(Path dir, Split split) { return load("fashion-mnist", dir, split, fashionHint()); }

  public static Dataset digits(Path dir, Split split) {
    return load("mnist", dir, split, "download the four idx files of MNIST into " + dir
        + ", or use --set data.name=synthetic to run without data");
  }

  private static String fashionHint() {
    return "install them with `apt-get install dataset-fashion-mnist` (files go to " + FASHION_DEBIAN_DIR
        + "), point data.path at a directory holding them, or use --set data.name=synthetic to run without data";
  }

  private static Dataset load(String name, Path dir, Split split, String hint) {
    String prefix = split == Split.TRAIN ? "train" : "t10k";
    Path images = find(dir, prefix + "-images-idx3-ubyte", hint);
    Path labels = find(dir, prefix + "-labels-idx1-ubyte", hint);
    IdxFiles.Array im = IdxFiles.read(images, 3);
    IdxFiles.Array lb = IdxFiles.read(labels, 1);
    if (im.dims()[0] != lb.dims()[0])
      throw new DataException(images + " has " + im.dims()[0] + " images but " + labels + " has " + lb.dims()[0] + " labels");
    Shape shape = Shape.of(1, im.dims()[1], im.dims()[2]);
    return new ByteImageDataset(name + " " + split.name().toLowerCase(), im.data(), lb.data(), shape, 10);
  }

  /** The plain or .gz file named {@code base} in {@code dir}, or an error naming both paths looked at and the hint. */
  static Path find(Path dir, String base, String hint) {
    for (Path p : List.of(dir.resolve(base), dir.resolve(base + ".gz"))) if (Files.isRegularFile(p)) return p;
    throw new DataException("data file not found: looked for " + dir.resolve(base) + " and " + dir.resolve(base + ".gz") + "; " + hint);
  }
}
