package io.colossal4j.train.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.colossal4j.backend.Backend;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.data.DataException;
import io.colossal4j.data.DataLoader;
import io.colossal4j.data.Dataset;
import io.colossal4j.data.Mnist;
import io.colossal4j.data.Split;
import io.colossal4j.tensor.Rng;
import io.colossal4j.tensor.Shape;
import java.nio.file.Files;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/** From a config to data sets, transforms and sharded loaders. */
class DataSourcesTest {
  static final Backend CPU = CpuBackend.reference();

  @Test void syntheticSplitsShareClassesButNotSamples() {
    RunConfig c = ConfigsTest.parse("data: {name: synthetic, synthetic: {train_size: 50, test_size: 20, shape: [1, 6, 6]}}");
    Dataset train = DataSources.open(c.data(), Split.TRAIN, c.seed()), test = DataSources.open(c.data(), Split.TEST, c.seed());
    assertEquals(50, train.size());
    assertEquals(20, test.size());
    assertFalse(Arrays.equals(train.get(0).x(), test.get(0).x()));
    assertEquals(Shape.of(1, 6, 6), test.sampleShape());
  }

  @Test void trainAugmentsAndEvalOnlyNormalises() {
    RunConfig c = ConfigsTest.parse("data: {name: synthetic, image_size: 8, augmentation: {random_crop_padding: 2, horizontal_flip: true},"
        + " synthetic: {train_size: 64, test_size: 16, shape: [1, 6, 6]}}");
    Dataset test = DataSources.open(c.data(), Split.TEST, c.seed());
    var evalSample = DataSources.transform(c.data(), test, Split.TEST).apply(test.get(3), new Rng(0));
    assertEquals(Shape.of(1, 8, 8), evalSample.shape());
    var resized = new io.colossal4j.data.Transforms.Resize(8, 8).apply(test.get(3), new Rng(0));
    for (int i = 0; i < 64; i++) assertEquals((resized.x()[i] - 0.5f) / 0.5f, evalSample.x()[i], 1e-6f, "resize then normalise (0.5, 0.5)");
    try (DataLoader l = DataSources.loader(c, DataSources.open(c.data(), Split.TRAIN, c.seed()), Split.TRAIN, CPU, 1, 2, 8)) {
      assertEquals(4, l.batchesPerEpoch(), "64 samples over 2 ranks, 8 per batch");
      try (var e = l.epoch(0)) {
        assertEquals(Shape.of(8, 1, 8, 8), e.next().inputs().shape());
      }
    }
    try (DataLoader l = DataSources.loader(c, test, Split.TEST, CPU, 0, 1, 6)) {
      assertEquals(3, l.batchesPerEpoch(), "evaluation keeps the last partial batch");
    }
  }

  @Test void missingDataSaysHowToGetIt() {
    RunConfig c = ConfigsTest.parse("data: {name: fashion_mnist, path: /nonexistent/fmnist}");
    var e = assertThrows(DataException.class, () -> DataSources.open(c.data(), Split.TRAIN, 0));
    assertTrue(e.getMessage().contains("/nonexistent/fmnist/train-images-idx3-ubyte") && e.getMessage().contains("apt-get install dataset-fashion-mnist"));
    var bad = ConfigsTest.parse("data: {name: synthetic, augmentation: {mean: [0.1, 0.2, 0.3], std: [1, 1, 1]}}");
    var ce = assertThrows(ConfigException.class, () -> DataSources.transform(bad.data(), DataSources.open(bad.data(), Split.TEST, 0), Split.TEST));
    assertTrue(ce.getMessage().startsWith("data.augmentation.mean: 3 values for images with 1 channels"), ce.getMessage());
  }

  @Test void defaultJobDataFromTheExample() {
    assumeTrue(Files.isDirectory(Mnist.FASHION_DEBIAN_DIR), Mnist.FASHION_DEBIAN_DIR + " is absent (apt-get install dataset-fashion-mnist); skipping");
    RunConfig c = Configs.load(ConfigsTest.EXAMPLES.resolve("vit-fashion-mnist.yaml"), List.of());
    Dataset test = DataSources.open(c.data(), Split.TEST, c.seed());
    try (DataLoader l = DataSources.loader(c, test, Split.TEST, CPU, 0, 1, 128)) {
      try (var e = l.epoch(0)) {
        var b = e.next();
        assertEquals(Shape.of(128, 1, 28, 28), b.inputs().shape());
        float[] first = Arrays.copyOf(b.inputs().toFloatArray(), 784);
        float[] raw = test.get(0).x();
        for (int i = 0; i < 784; i++) assertEquals((raw[i] - 0.2860f) / 0.3530f, first[i], 1e-5f);
      }
    }
  }
}
