package io.colossal4j.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.backend.Backend;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Loader order, collation, drop-last, determinism across worker counts, and resumption. */
class DataLoaderTest {
  static final Backend CPU = CpuBackend.reference();
  static final Dataset DATA = new SyntheticDataset(103, 4, Shape.of(1, 4, 4), 0.3, 11);
  static final Transform AUGMENT = Transform.compose(List.of(new Transforms.RandomCrop(4, 4, 1), new Transforms.HorizontalFlip(0.5)));

  static List<double[]> epoch(DataLoader loader, LoaderPosition from) {
    List<double[]> out = new ArrayList<>();
    try (DataLoader.Epoch e = loader.from(from)) {
      while (e.hasNext()) {
        DataLoader.Batch b = e.next();
        double[] x = b.inputs().toDoubleArray(), y = b.labels().toDoubleArray();
        double[] both = Arrays.copyOf(x, x.length + y.length);
        System.arraycopy(y, 0, both, x.length, y.length);
        out.add(both);
      }
    }
    return out;
  }

  @Test void collatesInSamplerOrder() {
    try (DataLoader l = new DataLoader(DATA, Sampler.sequential(DATA.size()), Transform.IDENTITY, CPU,
        new DataLoader.Options(10, false, 0, 1, 0))) {
      assertEquals(11, l.batchesPerEpoch());
      try (DataLoader.Epoch e = l.epoch(0)) {
        DataLoader.Batch b = e.next();
        assertEquals(Shape.of(10, 1, 4, 4), b.inputs().shape());
        assertEquals(DType.I64, b.labels().dtype());
        assertArrayEquals(new double[] {0, 1, 2, 3, 0, 1, 2, 3, 0, 1}, b.labels().toDoubleArray());
        float[] s7 = DATA.get(7).x();
        float[] got = Arrays.copyOfRange(b.inputs().toFloatArray(), 7 * 16, 8 * 16);
        assertArrayEquals(s7, got);
        assertEquals(new LoaderPosition(0, 1), b.next());
        DataLoader.Batch last = null;
        while (e.hasNext()) last = e.next();
        assertEquals(3, last.size(), "the last batch keeps the remaining 3 samples without drop_last");
        assertEquals(new LoaderPosition(1, 0), last.next());
      }
    }
    try (DataLoader l = new DataLoader(DATA, Sampler.sequential(DATA.size()), Transform.IDENTITY, CPU,
        new DataLoader.Options(10, true, 0, 1, 0))) {
      assertEquals(10, l.batchesPerEpoch());
      assertEquals(100, l.samplesPerEpoch());
    }
  }

  @Test void workersDoNotChangeTheBatches() {
    List<double[]> serial, parallel;
    try (DataLoader l = new DataLoader(DATA, Sampler.shuffled(DATA.size(), 3), AUGMENT, CPU, new DataLoader.Options(8, true, 0, 1, 77))) {
      serial = epoch(l, new LoaderPosition(2, 0));
    }
    try (DataLoader l = new DataLoader(DATA, Sampler.shuffled(DATA.size(), 3), AUGMENT, CPU, new DataLoader.Options(8, true, 3, 4, 77))) {
      parallel = epoch(l, new LoaderPosition(2, 0));
      List<double[]> other = epoch(l, new LoaderPosition(3, 0));
      assertFalse(Arrays.equals(parallel.get(0), other.get(0)), "another epoch is shuffled and augmented differently");
    }
    assertEquals(serial.size(), parallel.size());
    for (int i = 0; i < serial.size(); i++) assertArrayEquals(serial.get(i), parallel.get(i), "batch " + i);
  }

  @Test void resumingMidEpochContinuesWithTheSameBatches() {
    try (DataLoader l = new DataLoader(DATA, Sampler.shuffled(DATA.size(), 3), AUGMENT, CPU, new DataLoader.Options(8, true, 2, 2, 5))) {
      List<double[]> full = epoch(l, new LoaderPosition(1, 0));
      List<double[]> tail = epoch(l, new LoaderPosition(1, 7));
      assertEquals(full.size() - 7, tail.size());
      for (int i = 0; i < tail.size(); i++) assertArrayEquals(full.get(7 + i), tail.get(i));
      // Abandoning an epoch with batches in flight and starting another works (workers are reused).
      try (DataLoader.Epoch e = l.epoch(0)) {
        e.next();
      }
      assertEquals(full.size(), epoch(l, new LoaderPosition(1, 0)).size());
    }
  }

  @Test void errorsAreClear() {
    var e = assertThrows(DataException.class, () -> new DataLoader(DATA, Sampler.sequential(5), Transform.IDENTITY, CPU,
        new DataLoader.Options(8, true, 0, 1, 0)));
    assertTrue(e.getMessage().contains("fewer than one batch of 8"), e.getMessage());
    try (DataLoader l = new DataLoader(DATA, Sampler.sequential(DATA.size()), Transform.IDENTITY, CPU, new DataLoader.Options(8, true, 1, 1, 0))) {
      e = assertThrows(DataException.class, () -> l.from(new LoaderPosition(0, 99)));
      assertTrue(e.getMessage().contains("past the end"), e.getMessage());
    }
    Transform bad = (s, rng) -> rng.nextDouble() < 0.5 ? new Transforms.Resize(2, 2).apply(s, rng) : s;
    try (DataLoader l = new DataLoader(DATA, Sampler.sequential(DATA.size()), bad, CPU, new DataLoader.Options(16, true, 1, 1, 0))) {
      e = assertThrows(DataException.class, () -> epoch(l, new LoaderPosition(0, 0)));
      assertTrue(e.getMessage().contains("must share a shape"), e.getMessage());
    }
  }

  /** A nearest-class-mean classifier fitted on 400 synthetic samples labels 400 others correctly: the data is learnable. */
  @Test void syntheticDataIsLearnableAndDeterministic() {
    SyntheticDataset d = new SyntheticDataset(800, 10, Shape.of(1, 8, 8), 0.5, 1);
    assertArrayEquals(d.get(17).x(), new SyntheticDataset(800, 10, Shape.of(1, 8, 8), 0.5, 1).get(17).x());
    double[][] mean = new double[10][64];
    for (int i = 0; i < 400; i++) for (int j = 0; j < 64; j++) mean[d.get(i).label()][j] += d.get(i).x()[j] / 40.0;
    int correct = 0;
    for (int i = 400; i < 800; i++) {
      Sample s = d.get(i);
      int best = 0;
      double bestDist = Double.MAX_VALUE;
      for (int c = 0; c < 10; c++) {
        double dist = 0;
        for (int j = 0; j < 64; j++) dist += (s.x()[j] - mean[c][j]) * (s.x()[j] - mean[c][j]);
        if (dist < bestDist) { bestDist = dist; best = c; }
      }
      if (best == s.label()) correct++;
    }
    assertTrue(correct >= 380, "nearest-mean accuracy " + correct + "/400");
  }
}
