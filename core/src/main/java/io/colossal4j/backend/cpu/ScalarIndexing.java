package io.colossal4j.backend.cpu;

import io.colossal4j.tensor.Tensor;

/** Reference loops for index_select, index_add, gather and scatter_add. */
final class ScalarIndexing {
  private ScalarIndexing() {}

  static void indexSelect(Tensor x, int dim, Tensor index, Tensor out) { throw new UnsupportedOperationException("indexSelect: not implemented yet"); }

  static void indexAdd(Tensor out, int dim, Tensor index, Tensor src) { throw new UnsupportedOperationException("indexAdd: not implemented yet"); }

  static void gather(Tensor x, int dim, Tensor index, Tensor out) { throw new UnsupportedOperationException("gather: not implemented yet"); }

  static void scatterAdd(Tensor out, int dim, Tensor index, Tensor src) { throw new UnsupportedOperationException("scatterAdd: not implemented yet"); }
}
