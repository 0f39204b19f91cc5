package io.colossal4j.parallel.tensor;

import io.colossal4j.ops.Views;
import io.colossal4j.tensor.MemoryCategory;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;

/**
 * How one parameter of a single-device model is laid out over the ranks of a tp group.
 * {@link Replicate}: every rank holds all of it. {@link Shard}: each rank holds a slice along one dim.
 */
public sealed interface Placement {
  /** Every rank holds the full tensor, with identical values (see {@link TensorPlan} for why they stay identical). */
  record Replicate() implements Placement {
    /** A fresh contiguous copy of {@code full} without autograd history, accounted as a parameter. */
    public Tensor copy(Tensor full) {
      Tensor out = Tensor.empty(full.shape(), full.dtype(), full.backend(), MemoryCategory.PARAMETER);
      full.backend().kernels().copy(full, out);
      return out;
    }
  }

  /**
   * Dim {@code dim} of the full tensor is {@code blocks} equal consecutive blocks, and each block is cut into
   * size equal chunks; rank r holds chunk r of every block, concatenated in block order. One block is the
   * plain Megatron split (rows [r·n, (r+1)·n)); three blocks is a fused q/k/v projection, whose rank r keeps
   * heads [r·H/size, (r+1)·H/size) of q, of k and of v, so attention on the shard sees whole, contiguous heads.
   */
  record Shard(int dim, int blocks) implements Placement {
    public Shard {
      if (dim < 0) throw new IllegalArgumentException("shard dim must be >= 0, got " + dim);
      if (blocks < 1) throw new IllegalArgumentException("shard blocks must be >= 1, got " + blocks);
    }

    /** Whether dim {@code dim} of {@code full} divides into size chunks per block. */
    public boolean divides(Shape full, int size) {
      return dim < full.rank() && full.dim(dim) % (blocks * size) == 0;
    }

    public Shape shardShape(Shape full, int size) {
      requireDivisible(full, size);
      return full.with(dim, full.dim(dim) / size);
    }

    /** Rank {@code rank}'s slice of {@code full}: a fresh contiguous tensor without autograd history, accounted as a parameter. */
    public Tensor take(Tensor full, int rank, int size) {
      requireDivisible(full.shape(), size);
      int chunk = full.size(dim) / (blocks * size);
      Tensor grid = Views.reshape(full.detach(), outer(full.shape()), blocks, size * chunk, inner(full.shape()));
      Tensor mine = Views.narrow(grid, 2, rank * chunk, chunk);                        // [outer, blocks, chunk, inner], strided
      Tensor out = Tensor.empty(shardShape(full.shape(), size), full.dtype(), full.backend(), MemoryCategory.PARAMETER);
      full.backend().kernels().copy(mine, out.view(mine.shape(), mine.shape().contiguousStrides(), 0));
      return out;
    }

    /**
     * The full tensor from the ranks' slices laid end to end in rank order ({@code gathered} holds size ×
     * the shard's element count, as an all-gather of the contiguous shards leaves them).
     */
    public Tensor assemble(Tensor gathered, Shape full, int size) {
      requireDivisible(full, size);
      int chunk = full.dim(dim) / (blocks * size);
      Tensor byRank = Views.reshape(gathered.detach(), size, outer(full), blocks, chunk, inner(full));
      Tensor ordered = Views.contiguous(Views.permute(byRank, 1, 2, 0, 3, 4));   // [outer, blocks, size, chunk, inner]
      return Views.reshape(ordered, full.toArray());
    }

    private void requireDivisible(Shape full, int size) {
      if (!divides(full, size))
        throw new IllegalArgumentException("cannot shard " + full + " along dim " + dim + " into " + blocks + " block(s) × tp = " + size);
    }

    private int outer(Shape s) { return (int) s.numel(0, dim); }

    private int inner(Shape s) { return (int) s.numel(dim + 1, s.rank()); }
  }
}
