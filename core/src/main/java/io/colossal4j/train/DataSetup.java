package io.colossal4j.train;

import io.colossal4j.data.Cifar10;
import io.colossal4j.data.DataException;
import io.colossal4j.data.Dataset;
import io.colossal4j.data.ImageFolder;
import io.colossal4j.data.Mnist;
import io.colossal4j.data.Split;
import io.colossal4j.data.SyntheticDataset;
import io.colossal4j.data.Transform;
import io.colossal4j.data.Transforms;
import io.colossal4j.tensor.Shape;
import io.colossal4j.train.config.DataConfig;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The data sets and transforms a config names. Fashion-MNIST is obtained the way the machine allows: when
 * its files are missing from Debian's location and this process may install packages (root with apt-get),
 * it installs Debian's {@code dataset-fashion-mnist}, saying so; otherwise the error says exactly how.
 */
public final class DataSetup {
  private DataSetup() {}

  /** Train and test sets, with the per-channel statistics used to normalise them. */
  public record Sets(Dataset train, Dataset test, float[] mean, float[] std) {
    public int channels() { return train.sampleShape().dim(0); }

    public int imageSize() { return train.sampleShape().rank() >= 3 ? train.sampleShape().dim(-1) : 0; }
  }

  public static Sets load(DataConfig c, long seed, PrintStream log) {
    return switch (c.name()) {
      case FASHION_MNIST -> {
        Path dir = c.path().orElse(Mnist.FASHION_DEBIAN_DIR);
        if (dir.equals(Mnist.FASHION_DEBIAN_DIR) && !Files.isDirectory(dir)) installFashionMnist(log);
        yield new Sets(Mnist.fashion(dir, Split.TRAIN), Mnist.fashion(dir, Split.TEST), new float[] {0.2860f}, new float[] {0.3530f});
      }
      case MNIST -> {
        Path dir = c.path().orElse(Path.of("data/mnist"));
        yield new Sets(Mnist.digits(dir, Split.TRAIN), Mnist.digits(dir, Split.TEST), new float[] {0.1307f}, new float[] {0.3081f});
      }
      case CIFAR10 -> {
        Path dir = c.path().orElse(Path.of("data/cifar10"));
        yield new Sets(Cifar10.load(dir, Split.TRAIN), Cifar10.load(dir, Split.TEST),
            new float[] {0.4914f, 0.4822f, 0.4465f}, new float[] {0.2470f, 0.2435f, 0.2616f});
      }
      case IMAGE_FOLDER -> {
        Path root = c.path().orElseThrow();
        int size = c.imageSize().orElse(224);
        Dataset train = new ImageFolder(root.resolve("train"), 3, size, size);
        Dataset test = Files.isDirectory(root.resolve("val")) ? new ImageFolder(root.resolve("val"), 3, size, size) : train;
        yield new Sets(train, test, new float[] {0.485f, 0.456f, 0.406f}, new float[] {0.229f, 0.224f, 0.225f});
      }
      case SYNTHETIC -> {
        DataConfig.Synthetic s = c.synthetic();
        Shape shape = Shape.of(s.shape().stream().mapToInt(Integer::intValue).toArray());
        yield new Sets(new SyntheticDataset(s.trainSize(), s.numClasses(), shape, s.noise(), seed),
            new SyntheticDataset(s.testSize(), s.numClasses(), shape, s.noise(), seed), new float[] {0f}, new float[] {1f});
      }
    };
  }

  /** Training transforms: resize, random crop, flip, normalise (each only if configured). */
  public static Transform trainTransform(DataConfig c, Sets sets) {
    List<Transform> steps = new ArrayList<>(commonPrefix(c));
    var a = c.augmentation();
    int h = c.imageSize().orElse(sets.train().sampleShape().dim(-2)), w = c.imageSize().orElse(sets.train().sampleShape().dim(-1));
    if (a.randomCropPadding() > 0) steps.add(new Transforms.RandomCrop(h, w, a.randomCropPadding()));
    if (a.horizontalFlip()) steps.add(new Transforms.HorizontalFlip(0.5));
    if (a.normalize()) steps.add(normalize(c, sets));
    return Transform.compose(steps);
  }

  /** Evaluation transforms: resize and normalise only. */
  public static Transform evalTransform(DataConfig c, Sets sets) {
    List<Transform> steps = new ArrayList<>(commonPrefix(c));
    if (c.augmentation().normalize()) steps.add(normalize(c, sets));
    return Transform.compose(steps);
  }

  private static List<Transform> commonPrefix(DataConfig c) {
    return c.imageSize().isPresent() && c.name() != DataConfig.Name.IMAGE_FOLDER
        ? List.of(new Transforms.Resize(c.imageSize().get(), c.imageSize().get())) : List.of();
  }

  private static Transform normalize(DataConfig c, Sets sets) {
    var a = c.augmentation();
    float[] mean = a.mean().map(DataSetup::floats).orElse(sets.mean()), std = a.std().map(DataSetup::floats).orElse(sets.std());
    return new Transforms.Normalize(mean, std);
  }

  private static float[] floats(List<Double> v) {
    float[] f = new float[v.size()];
    for (int i = 0; i < f.length; i++) f[i] = v.get(i).floatValue();
    return f;
  }

  private static void installFashionMnist(PrintStream log) {
    boolean root = "root".equals(System.getProperty("user.name"));
    boolean apt = Files.isExecutable(Path.of("/usr/bin/apt-get"));
    if (!root || !apt) return; // the loader's error then says how to get the files
    log.println("colossal: Fashion-MNIST is not in " + Mnist.FASHION_DEBIAN_DIR + "; installing Debian's dataset-fashion-mnist (apt-get install -y dataset-fashion-mnist) ...");
    run(List.of("apt-get", "install", "-y", "-q", "dataset-fashion-mnist"), log);
    if (!Files.isDirectory(Mnist.FASHION_DEBIAN_DIR)) {
      log.println("colossal: not found in the package lists; running apt-get update first ...");
      run(List.of("apt-get", "update", "-q"), log);
      run(List.of("apt-get", "install", "-y", "-q", "dataset-fashion-mnist"), log);
    }
    if (!Files.isDirectory(Mnist.FASHION_DEBIAN_DIR))
      throw new DataException("installing dataset-fashion-mnist did not create " + Mnist.FASHION_DEBIAN_DIR
          + "; install it by hand (apt-get install dataset-fashion-mnist) or use --set data.name=synthetic");
  }

  private static void run(List<String> cmd, PrintStream log) {
    try {
      Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
      String out = new String(p.getInputStream().readAllBytes());
      int rc = p.waitFor();
      if (rc != 0) log.println("colossal: `" + String.join(" ", cmd) + "` exited with " + rc + ":\n" + out.lines().skip(Math.max(0, out.lines().count() - 5)).reduce("", (x, y) -> x + "  " + y + "\n"));
    } catch (IOException e) {
      log.println("colossal: could not run " + cmd.get(0) + ": " + e.getMessage());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
