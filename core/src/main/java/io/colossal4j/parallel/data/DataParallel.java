package io.colossal4j.parallel.data;

import io.colossal4j.step.StepHooks;

import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.distributed.Reduction;
import io.colossal4j.distributed.Work;
import io.colossal4j.nn.Module;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;

import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * Data parallelism (PyTorch DDP's design, Li et al. VLDB 2020): parameters are grouped in reverse order of
 * registration (≈ the order backward produces their gradients) into buckets of about {@code bucketBytes};
 * each bucket's gradients live in one flat buffer that the parameters' {@code grad} views slice, so autograd
 * accumulates straight into it. The buffers come from {@link ProcessGroup#allocateShared}, so a group that can
 * reduce them in place (the CPU group between ranks of one host) does, with no copy in or out. When the last gradient of a bucket is ready its all-reduce (average over
 * the data-parallel group) starts asynchronously, overlapping the rest of backward. Micro-batches before
 * the last of an accumulation step do not communicate. Before the optimizer step every bucket is awaited.
 *
 * <p>Invariant: after {@link #beforeStep()} every rank holds bit-identical gradients, so the identical
 * optimizer step keeps parameters identical (they start identical: rank 0's values are broadcast).
 */
public final class DataParallel implements StepHooks {
  private final ProcessGroup group;
  private final List<Bucket> buckets = new ArrayList<>();
  private final Map<Tensor, Bucket> bucketOf = new IdentityHashMap<>();
  private boolean syncThisBackward = true;

  private static final class Bucket {
    final List<Tensor> params = new ArrayList<>();
    final List<Tensor> views = new ArrayList<>();
    Tensor buffer;
    int ready;
    Work work;
  }

  public DataParallel(Module model, ProcessGroup group, long bucketBytes) {
    if (bucketBytes < 1) throw new IllegalArgumentException("bucket size must be >= 1 byte, got " + bucketBytes);
    this.group = group;
    for (Tensor t : model.stateDict().values()) group.broadcast(t, 0);
    List<Tensor> params = model.parameters();
    DType dtype = params.getFirst().dtype();
    Bucket current = new Bucket();
    long bytes = 0;
    for (int i = params.size() - 1; i >= 0; i--) {
      Tensor p = params.get(i);
      if (p.dtype() != dtype) throw new IllegalArgumentException("data parallelism needs one parameter dtype; parameter " + i + " is " + p.dtype() + ", the first is " + dtype);
      current.params.add(p);
      bytes += p.numel() * dtype.byteSize();
      if (bytes >= bucketBytes) { buckets.add(current); current = new Bucket(); bytes = 0; }
    }
    if (!current.params.isEmpty()) buckets.add(current);
    for (Bucket b : buckets) allocate(b);
    for (Tensor p : params) p.addGradReadyHook(this::onGradReady);
  }

  private void allocate(Bucket b) {
    long n = 0;
    for (Tensor p : b.params) n += p.numel();
    Tensor first = b.params.getFirst();
    // In the group's shared buffers where it has them (the CPU group on one host: all-reduced in place, no copies).
    b.buffer = group.allocateShared(Shape.of(Math.toIntExact(n)), first.dtype(), first.backend(), io.colossal4j.tensor.MemoryCategory.GRADIENT);
    long off = 0;
    for (Tensor p : b.params) {
      Tensor view = b.buffer.view(p.shape(), p.shape().contiguousStrides(), off);
      b.views.add(view);
      p.setGrad(view);
      bucketOf.put(p, b);
      off += p.numel();
    }
  }

  public int bucketCount() { return buckets.size(); }

  /** How many buckets live in the group's shared buffers (reduced in place; see {@link ProcessGroup#isShared}). */
  public int sharedBucketCount() { return (int) buckets.stream().filter(b -> group.isShared(b.buffer)).count(); }

  private void onGradReady(Tensor p) {
    Bucket b = bucketOf.get(p);
    if (b == null || !syncThisBackward) return;
    if (++b.ready == b.params.size() && b.work == null) b.work = group.allReduceAsync(b.buffer, Reduction.AVG);
  }

  @Override public void beforeBackward(int micro, int count) {
    syncThisBackward = micro == count - 1;
    for (Bucket b : buckets) b.ready = 0;
  }

  @Override public void beforeStep() {
    // Buckets whose parameters got no gradient in the last pass (unused branches) still reduce, in order.
    for (Bucket b : buckets) if (b.work == null) b.work = group.allReduceAsync(b.buffer, Reduction.AVG);
    for (Bucket b : buckets) { b.work.await(); b.work = null; }
  }

  @Override public Tensor reduceStepMetrics(Tensor sums) {
    group.allReduce(sums, Reduction.SUM);
    return sums;
  }

  @Override public void afterStep() {
    for (Bucket b : buckets) {
      b.buffer.backend().kernels().fill(b.buffer, 0);
      for (int i = 0; i < b.params.size(); i++) b.params.get(i).setGrad(b.views.get(i));
    }
  }
}
