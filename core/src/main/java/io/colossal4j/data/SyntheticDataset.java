package io.colossal4j.data;

import io.colossal4j.tensor.Rng;
import io.colossal4j.tensor.Shape;

/**
 * A learnable stand-in for a real data set, of any sample shape: each class has a fixed random pattern with
 * values in [0, 1], and sample i is its class's pattern plus Gaussian noise of standard deviation {@code noise}
 * (label i mod numClasses, so classes are balanced). Everything derives from {@code seed}: pattern c from
 * stream fork(c), the noise of sample i from fork(numClasses + i), so a sample is computed on demand, the same
 * on every call and every thread. With noise well below the patterns' spread (e.g. 0.5) a linear model reaches
 * high accuracy; larger noise makes it harder.
 */
public final class SyntheticDataset implements Dataset {
  private final int size;
  private final int numClasses;
  private final Shape shape;
  private final double noise;
  private final long seed;
  private final long firstIndex;
  private final float[][] patterns;

  public SyntheticDataset(int size, int numClasses, Shape shape, double noise, long seed) {
    this(size, numClasses, shape, noise, seed, 0);
  }

  /**
   * Samples {@code firstIndex .. firstIndex + size - 1} of the endless synthetic stream: a test split is the same
   * classes with other noise when it starts where the training split ends.
   */
  public SyntheticDataset(int size, int numClasses, Shape shape, double noise, long seed, long firstIndex) {
    if (size < 1 || numClasses < 2 || shape.numel() < 1 || !(noise >= 0))
      throw new DataException("synthetic data: need size >= 1, classes >= 2, a non-empty shape and noise >= 0; got size "
          + size + ", classes " + numClasses + ", shape " + shape + ", noise " + noise);
    this.size = size;
    this.numClasses = numClasses;
    this.shape = shape;
    this.noise = noise;
    this.seed = seed;
    this.firstIndex = firstIndex;
    Rng root = new Rng(seed);
    this.patterns = new float[numClasses][Math.toIntExact(shape.numel())];
    for (int c = 0; c < numClasses; c++) {
      Rng r = root.fork(c);
      for (int i = 0; i < patterns[c].length; i++) patterns[c][i] = (float) r.nextDouble();
    }
  }

  @Override public int size() { return size; }

  @Override public Sample get(int index) {
    checkIndex(index);
    long global = firstIndex + index;
    int label = (int) (global % numClasses);
    float[] p = patterns[label];
    float[] x = new float[p.length];
    Rng r = new Rng(seed).fork(numClasses + global);
    for (int i = 0; i < x.length; i += 2) {
      // Box-Muller: two independent standard normals per pair of uniforms
      double u1 = 1 - r.nextDouble(), u2 = r.nextDouble();
      double rad = Math.sqrt(-2 * Math.log(u1));
      x[i] = (float) (p[i] + noise * rad * Math.cos(2 * Math.PI * u2));
      if (i + 1 < x.length) x[i + 1] = (float) (p[i + 1] + noise * rad * Math.sin(2 * Math.PI * u2));
    }
    return new Sample(x, shape, label);
  }

  @Override public Shape sampleShape() { return shape; }

  @Override public int numClasses() { return numClasses; }

  @Override public String describe() { return "synthetic, " + size + " samples of " + shape + " in " + numClasses + " classes"; }
}
