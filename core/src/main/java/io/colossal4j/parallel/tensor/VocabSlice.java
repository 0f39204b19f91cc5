package io.colossal4j.parallel.tensor;

import io.colossal4j.backend.BinaryOp;
import io.colossal4j.ops.Arith;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;
import java.util.OptionalLong;

/**
 * The vocabulary entries [start, start + size) that one tp rank owns (rank r of p owns [r·V/p, (r+1)·V/p)).
 * Turns global ids into local ones: ids this rank owns become 0..size-1, the others 0, with a mask that
 * is 1 where this rank owns the id and 0 elsewhere (so the others contribute exact zeros to a sum over ranks).
 */
record VocabSlice(int start, int size, int vocab) {
  static VocabSlice of(int localSize, int rank, int ranks) {
    return new VocabSlice(rank * localSize, localSize, localSize * ranks);
  }

  /** ids (i32/i64, any shape) as local ids, safe to index this rank's rows with. */
  Tensor localIds(Tensor ids, Tensor owned) {
    Tensor shifted = Arith.addScalar(ids, -start);
    return Arith.where(owned, shifted, Tensor.scalar(0, ids.dtype(), ids.backend()));
  }

  /** Where this rank owns the id (bool, ids' shape). */
  Tensor owned(Tensor ids) {
    Tensor atLeast = Arith.compareScalar(BinaryOp.GE, ids, start);
    Tensor below = Arith.compareScalar(BinaryOp.LT, ids, start + size);
    return Arith.where(atLeast, below, Tensor.scalar(0, DType.BOOL, ids.backend()));
  }

  /**
   * Rejects an id outside [0, vocab) that is not {@code ignored} (when present), naming it: without this
   * check a bad id would silently match no rank instead of failing as a single-device lookup does.
   */
  void requireInVocab(String op, Tensor ids, OptionalLong ignored) {
    long[] v = ids.toLongArray();
    for (int i = 0; i < v.length; i++) {
      boolean skip = ignored.isPresent() && v[i] == ignored.getAsLong();
      if ((v[i] < 0 || v[i] >= vocab) && !skip)
        throw new TensorException(op + ": id " + v[i] + " at position " + i + " is outside the vocabulary 0.." + (vocab - 1)
            + (ignored.isPresent() ? " and is not the ignore index " + ignored.getAsLong() : ""));
    }
  }
}
