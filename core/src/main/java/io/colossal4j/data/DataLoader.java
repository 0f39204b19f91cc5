package io.colossal4j.data;

import io.colossal4j.backend.Backend;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Rng;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.ArrayDeque;
import java.util.Iterator;
import java.util.NoSuchElementException;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Batches of a data set in the order of a {@link Sampler}, built by worker threads ahead of use.
 *
 * <p>Determinism: batch b of epoch e holds the samples at positions [b·B, (b+1)·B) of
 * {@code sampler.indices(e)}, each transformed with the stream {@code Rng(seed).fork(e).fork(index)}. A batch is
 * therefore a pure function of (seed, epoch, batch index), whatever the number of workers, and a run resumed
 * from a {@link LoaderPosition} sees exactly the batches it would have seen.
 *
 * <p>Threads: {@code numWorkers} daemon threads decode, transform and collate batches into host arrays, at most
 * {@code prefetch} batches ahead; the tensors are created on the consuming thread (the one that iterates), so a
 * device backend is only touched by that thread. 0 workers builds each batch on the consuming thread. One
 * {@link Epoch} at a time may be iterated; it is not thread-safe. Close the loader to stop the workers.
 */
public final class DataLoader implements AutoCloseable {
  /**
   * @param batchSize samples per batch on this rank
   * @param dropLast drop a last, smaller batch (always true when training, so every step sees batchSize samples)
   * @param numWorkers loader threads (0: build batches on the calling thread)
   * @param prefetch batches built ahead of use (>= 1)
   * @param seed root of the per-sample augmentation streams
   */
  public record Options(int batchSize, boolean dropLast, int numWorkers, int prefetch, long seed) {
    public Options {
      if (batchSize < 1) throw new DataException("data loader: batch size must be >= 1, got " + batchSize);
      if (numWorkers < 0) throw new DataException("data loader: num_workers must be >= 0, got " + numWorkers);
      if (prefetch < 1) throw new DataException("data loader: prefetch must be >= 1, got " + prefetch);
    }
  }

  /**
   * One collated batch: {@code inputs} [n, ...sample shape] (f32), {@code labels} [n] (i64), where it stands in the
   * epoch, and the position to save in a checkpoint taken after consuming it.
   */
  public record Batch(Tensor inputs, Tensor labels, LoaderPosition position, LoaderPosition next) {
    public int size() { return labels.size(0); }
  }

  private record HostBatch(float[] x, Shape sampleShape, long[] labels) {}

  private final Dataset dataset;
  private final Sampler sampler;
  private final Transform transform;
  private final Backend backend;
  private final Options options;
  private final ExecutorService workers;

  public DataLoader(Dataset dataset, Sampler sampler, Transform transform, Backend backend, Options options) {
    this.dataset = dataset;
    this.sampler = sampler;
    this.transform = transform;
    this.backend = backend;
    this.options = options;
    if (batchesPerEpoch() == 0)
      throw new DataException("data loader: " + dataset.describe() + " gives " + sampler.length() + " samples per epoch, fewer than one batch of "
          + options.batchSize() + (options.dropLast() ? " (drop_last is on)" : ""));
    AtomicInteger n = new AtomicInteger();
    this.workers = options.numWorkers() == 0 ? null : Executors.newFixedThreadPool(options.numWorkers(), r -> {
      Thread t = new Thread(r, "c4j-data-" + n.getAndIncrement());
      t.setDaemon(true);
      return t;
    });
  }

  public Dataset dataset() { return dataset; }

  public Options options() { return options; }

  public int batchesPerEpoch() {
    int n = sampler.length(), b = options.batchSize();
    return options.dropLast() ? n / b : (n + b - 1) / b;
  }

  /** The samples one epoch delivers (less than the sampler's length when the last partial batch is dropped). */
  public int samplesPerEpoch() {
    return options.dropLast() ? batchesPerEpoch() * options.batchSize() : sampler.length();
  }

  public Epoch epoch(int epoch) { return from(new LoaderPosition(epoch, 0)); }

  /** Iterates the rest of {@code position.epoch()} starting with batch {@code position.batch()}. */
  public Epoch from(LoaderPosition position) {
    if (position.batch() > batchesPerEpoch())
      throw new DataException("loader position " + position + " is past the end of an epoch of " + batchesPerEpoch()
          + " batches (was the checkpoint made with another batch size or data set?)");
    return new Epoch(position);
  }

  /** The batches of one epoch from a starting position. Closing it cancels the batches still being built. */
  public final class Epoch implements Iterator<Batch>, AutoCloseable {
    private final int epoch;
    private final int[] order;
    private final ArrayDeque<Future<HostBatch>> inflight = new ArrayDeque<>();
    private int nextToSubmit;
    private int nextToTake;

    private Epoch(LoaderPosition start) {
      this.epoch = start.epoch();
      this.order = sampler.indices(epoch);
      this.nextToSubmit = start.batch();
      this.nextToTake = start.batch();
      if (workers != null) while (inflight.size() < options.prefetch() && nextToSubmit < batchesPerEpoch()) submit();
    }

    private void submit() {
      int b = nextToSubmit++;
      inflight.add(workers.submit(() -> build(epoch, order, b)));
    }

    @Override public boolean hasNext() { return nextToTake < batchesPerEpoch(); }

    @Override public Batch next() {
      if (!hasNext()) throw new NoSuchElementException("epoch " + epoch + " has " + batchesPerEpoch() + " batches");
      int b = nextToTake++;
      HostBatch hb;
      if (workers == null) hb = build(epoch, order, b);
      else {
        Future<HostBatch> f = inflight.poll();
        if (nextToSubmit < batchesPerEpoch()) submit();
        hb = await(f);
      }
      int n = hb.labels().length;
      int[] dims = new int[hb.sampleShape().rank() + 1];
      dims[0] = n;
      System.arraycopy(hb.sampleShape().toArray(), 0, dims, 1, dims.length - 1);
      Tensor inputs = Tensor.of(hb.x(), Shape.of(dims), backend);
      Tensor labels = Tensor.of(hb.labels(), Shape.of(n), DType.I64, backend);
      LoaderPosition pos = new LoaderPosition(epoch, b);
      return new Batch(inputs, labels, pos, pos.next(batchesPerEpoch()));
    }

    @Override public void close() {
      for (Future<HostBatch> f : inflight) f.cancel(true);
      inflight.clear();
    }
  }

  private static HostBatch await(Future<HostBatch> f) {
    try {
      return f.get();
    } catch (ExecutionException e) {
      if (e.getCause() instanceof RuntimeException re) throw re;
      throw new DataException("data loader worker failed: " + e.getCause(), e.getCause());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new DataException("interrupted while waiting for a batch", e);
    } catch (CancellationException e) {
      throw new DataException("the batch was cancelled (epoch closed)", e);
    }
  }

  private HostBatch build(int epoch, int[] order, int b) {
    int from = b * options.batchSize(), to = Math.min(order.length, from + options.batchSize());
    Rng epochRng = new Rng(options.seed()).fork(epoch);
    float[] x = null;
    Shape shape = null;
    long[] labels = new long[to - from];
    for (int k = from; k < to; k++) {
      Sample s = transform.apply(dataset.get(order[k]), epochRng.fork(order[k]));
      if (x == null) {
        shape = s.shape();
        x = new float[Math.toIntExact((long) (to - from) * s.x().length)];
      } else if (!s.shape().equals(shape)) {
        throw new DataException(dataset.describe() + ": sample " + order[k] + " has shape " + s.shape() + " after transforms but sample "
            + order[from] + " has " + shape + "; samples of a batch must share a shape (add a resize)");
      }
      System.arraycopy(s.x(), 0, x, (k - from) * s.x().length, s.x().length);
      labels[k - from] = s.label();
    }
    return new HostBatch(x, shape, labels);
  }

  @Override public void close() {
    if (workers != null) workers.shutdownNow();
  }
}
