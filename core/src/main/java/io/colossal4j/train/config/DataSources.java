package io.colossal4j.train.config;

import io.colossal4j.backend.Backend;
import io.colossal4j.data.Cifar10;
import io.colossal4j.data.DataLoader;
import io.colossal4j.data.Dataset;
import io.colossal4j.data.DistributedSampler;
import io.colossal4j.data.ImageFolder;
import io.colossal4j.data.Mnist;
import io.colossal4j.data.Split;
import io.colossal4j.data.SyntheticDataset;
import io.colossal4j.data.Transform;
import io.colossal4j.data.Transforms;
import io.colossal4j.tensor.Rng;
import io.colossal4j.tensor.Shape;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Builds the data side of a run from its configuration: the data set of a split, its transforms and a loader
 * sharded over data-parallel ranks. Training shuffles (seeded from the run seed) and augments; evaluation
 * visits the data in order and only resizes and normalises.
 */
public final class DataSources {
  private DataSources() {}

  /** Where each data set is looked for when {@code data.path} is not set. */
  public static Path defaultPath(DataConfig.Name name) {
    return switch (name) {
      case FASHION_MNIST -> Mnist.FASHION_DEBIAN_DIR;
      case MNIST -> Path.of("data/mnist");
      case CIFAR10 -> Path.of("data/cifar10");
      case IMAGE_FOLDER, SYNTHETIC -> Path.of(".");
    };
  }

  public static Dataset open(DataConfig c, Split split, long seed) {
    Path path = c.path().orElse(defaultPath(c.name()));
    return switch (c.name()) {
      case FASHION_MNIST -> Mnist.fashion(path, split);
      case MNIST -> Mnist.digits(path, split);
      case CIFAR10 -> Cifar10.load(path, split);
      case IMAGE_FOLDER -> {
        int size = c.imageSize().orElseThrow(() -> new ConfigException("data.image_size", "an image folder needs data.image_size (images are resized to it)"));
        Path dir = split == Split.TRAIN ? path.resolve("train")
            : java.nio.file.Files.isDirectory(path.resolve("test")) ? path.resolve("test") : path.resolve("val");
        yield new ImageFolder(dir, 3, size, size);
      }
      case SYNTHETIC -> {
        DataConfig.Synthetic s = c.synthetic();
        Shape shape = Shape.of(s.shape().stream().mapToInt(Integer::intValue).toArray());
        long dataSeed = new Rng(seed).fork("synthetic").seed();
        yield split == Split.TRAIN ? new SyntheticDataset(s.trainSize(), s.numClasses(), shape, s.noise(), dataSeed)
            : new SyntheticDataset(s.testSize(), s.numClasses(), shape, s.noise(), dataSeed, s.trainSize());
      }
    };
  }

  /** Per-channel mean and std used by normalisation: the configured ones, else the data set's published statistics. */
  public static float[][] normalization(DataConfig c, int channels) {
    if (c.augmentation().mean().isPresent())
      return new float[][] {floats(c.augmentation().mean().get()), floats(c.augmentation().std().orElseThrow())};
    return switch (c.name()) {
      case FASHION_MNIST -> new float[][] {{0.2860f}, {0.3530f}};
      case MNIST -> new float[][] {{0.1307f}, {0.3081f}};
      case CIFAR10 -> new float[][] {{0.4914f, 0.4822f, 0.4465f}, {0.2470f, 0.2435f, 0.2616f}};
      case IMAGE_FOLDER -> new float[][] {{0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}}; // ImageNet's
      case SYNTHETIC -> new float[][] {{0.5f}, {0.5f}};
    };
  }

  /** Training: resize, random crop with padding, flip, normalise (each if configured); evaluation: resize and normalise. */
  public static Transform transform(DataConfig c, Dataset d, Split split) {
    List<Transform> steps = new ArrayList<>();
    Shape s = d.sampleShape();
    boolean image = s.rank() == 3;
    if (c.imageSize().isPresent()) {
      if (!image) throw new ConfigException("data.image_size", "samples of shape " + s + " are not images [C, H, W]");
      steps.add(new Transforms.Resize(c.imageSize().get(), c.imageSize().get()));
    }
    DataConfig.Augmentation a = c.augmentation();
    if (split == Split.TRAIN && image) {
      int h = c.imageSize().orElse(s.dim(1)), w = c.imageSize().orElse(s.dim(2));
      if (a.randomCropPadding() > 0) steps.add(new Transforms.RandomCrop(h, w, a.randomCropPadding()));
      if (a.horizontalFlip()) steps.add(new Transforms.HorizontalFlip(0.5));
    }
    if (a.normalize() && image) {
      float[][] ms = normalization(c, s.dim(0));
      if (ms[0].length != 1 && ms[0].length != s.dim(0))
        throw new ConfigException("data.augmentation.mean", ms[0].length + " values for images with " + s.dim(0) + " channels (valid: 1 or " + s.dim(0) + ")");
      steps.add(new Transforms.Normalize(ms[0], ms[1]));
    }
    return steps.isEmpty() ? Transform.IDENTITY : Transform.compose(steps);
  }

  /**
   * The loader of {@code split} for data-parallel rank {@code rank} of {@code ranks}, with {@code perRankBatch}
   * samples per batch (from {@link RunConfig#plan}). Training shards a shuffled epoch (padded to equal length,
   * as PyTorch's DistributedSampler) and drops a last partial batch; evaluation keeps every sample.
   */
  public static DataLoader loader(RunConfig config, Dataset d, Split split, Backend backend, int rank, int ranks, int perRankBatch) {
    boolean train = split == Split.TRAIN;
    long seed = new Rng(config.seed()).fork("data").seed();
    var sampler = new DistributedSampler(d.size(), ranks, rank, train, seed, DistributedSampler.Tail.PAD);
    var options = new DataLoader.Options(perRankBatch, train, config.data().numWorkers(), config.data().prefetch(), seed);
    return new DataLoader(d, sampler, transform(config.data(), d, split), backend, options);
  }

  private static float[] floats(List<Double> v) {
    float[] f = new float[v.size()];
    for (int i = 0; i < f.length; i++) f[i] = v.get(i).floatValue();
    return f;
  }
}
