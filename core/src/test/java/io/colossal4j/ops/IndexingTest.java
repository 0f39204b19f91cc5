package io.colossal4j.ops;

import static io.colossal4j.testing.GradCheck.assertClose;
import static io.colossal4j.testing.GradCheck.check;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.autograd.Autograd;
import io.colossal4j.backend.Backend;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;
import org.junit.jupiter.api.Test;

/** index_select, index_add, embedding, gather and scatter_add: hand-derived forwards, finite-difference gradients, bad indices. */
class IndexingTest {
  static final Backend CPU = CpuBackend.reference();

  static Tensor ids(Shape shape, DType dtype, long... values) { return Tensor.of(values, shape, dtype, CPU); }

  @Test void indexSelectForwardByHand() {
    Tensor x = Tensor.of(new double[] {0, 1, 2, 10, 11, 12}, Shape.of(2, 3), DType.F32, CPU);
    Tensor cols = Indexing.indexSelect(x, 1, ids(Shape.of(4), DType.I32, 2, 0, 2, 1));
    assertEquals(Shape.of(2, 4), cols.shape());
    assertClose(new double[] {2, 0, 2, 1, 12, 10, 12, 11}, cols.toDoubleArray(), 0, 0, "index_select dim 1");
    Tensor rows = Indexing.indexSelect(Views.transpose(x, 0, 1), 0, ids(Shape.of(2), DType.I64, 1, 1));
    assertClose(new double[] {1, 11, 1, 11}, rows.toDoubleArray(), 0, 0, "index_select of a transposed view");
  }

  @Test void selectionCopiesI64Exactly() {
    long big = (1L << 53) + 1; // not representable as a double
    Tensor x = Tensor.of(new long[] {big, -big, 7}, Shape.of(3), DType.I64, CPU);
    assertArrayEquals(new long[] {7, big, -big}, Indexing.indexSelect(x, 0, ids(Shape.of(3), DType.I64, 2, 0, 1)).toLongArray());
    assertArrayEquals(new long[] {-big, big}, Indexing.gather(x, 0, ids(Shape.of(2), DType.I32, 1, 0)).toLongArray());
  }

  @Test void indexSelectAndIndexAddGradients() {
    // repeated index 2: its gradient row is the sum of both uses
    check(CPU, t -> Indexing.indexSelect(t[0], 1, ids(Shape.of(4), DType.I64, 2, 0, 2, 3)), Shape.of(3, 4));
    check(CPU, t -> Indexing.indexSelect(Views.transpose(t[0], 0, 1), 0, ids(Shape.of(3), DType.I32, 1, 1, 0)), Shape.of(3, 4));
    check(CPU, t -> Indexing.indexAdd(t[0], 0, ids(Shape.of(3), DType.I64, 1, 0, 1), t[1]), Shape.of(2, 3), Shape.of(3, 3));
  }

  @Test void indexAddForwardByHand() {
    Tensor x = Tensor.zeros(Shape.of(3), DType.F64, CPU);
    Tensor src = Tensor.of(new double[] {1, 2, 4}, Shape.of(3), DType.F64, CPU);
    assertClose(new double[] {0, 0, 7}, Indexing.indexAdd(x, 0, ids(Shape.of(3), DType.I64, 2, 2, 2), src).toDoubleArray(), 0, 0, "index_add");
  }

  @Test void embeddingAnyIdShapeWithRepeatedIds() {
    Tensor w = Tensor.of(new double[] {0, 1, 10, 11, 20, 21}, Shape.of(3, 2), DType.F32, CPU);
    Tensor out = Indexing.embedding(w, ids(Shape.of(2, 2), DType.I64, 2, 0, 2, 1));
    assertEquals(Shape.of(2, 2, 2), out.shape());
    assertClose(new double[] {20, 21, 0, 1, 20, 21, 10, 11}, out.toDoubleArray(), 0, 0, "embedding");
    Tensor ids = ids(Shape.of(2, 3), DType.I64, 4, 1, 4, 0, 4, 2);
    check(CPU, t -> Indexing.embedding(t[0], ids), Shape.of(5, 3));
    // non-contiguous ids (a transposed view) and a rank-0 id
    check(CPU, t -> Indexing.embedding(t[0], Views.transpose(ids, 0, 1)), Shape.of(5, 3));
    assertEquals(Shape.of(2), Indexing.embedding(w, ids(Shape.scalar(), DType.I32, 1)).shape());
  }

  @Test void embeddingGradientSumsRepeatedIds() {
    Tensor w = Tensor.zeros(Shape.of(3, 2), DType.F64, CPU).requiresGrad(true);
    Tensor out = Indexing.embedding(w, ids(Shape.of(4), DType.I64, 1, 1, 1, 2));
    Autograd.backward(Reduce.sum(out));
    assertClose(new double[] {0, 0, 3, 3, 1, 1}, w.grad().toDoubleArray(), 0, 0, "d sum / d weight counts each id");
  }

  @Test void gatherForwardByHand() {
    Tensor x = Tensor.of(new double[] {1, 2, 3, 4}, Shape.of(2, 2), DType.F32, CPU);
    Tensor out = Indexing.gather(x, 1, ids(Shape.of(2, 2), DType.I64, 0, 0, 1, 0));
    assertClose(new double[] {1, 1, 4, 3}, out.toDoubleArray(), 0, 0, "gather (torch docs example)");
  }

  @Test void gatherAndScatterAddGradients() {
    Tensor idx = ids(Shape.of(3, 2), DType.I64, 3, 3, 0, 1, 2, 0);
    check(CPU, t -> Indexing.gather(t[0], 1, idx), Shape.of(3, 4));
    check(CPU, t -> Indexing.gather(t[0], 0, ids(Shape.of(2, 3), DType.I32, 2, 0, 1, 2, 2, 0)), Shape.of(3, 4));
    check(CPU, t -> Indexing.gather(Views.transpose(t[0], 0, 1), 1, idx), Shape.of(4, 3));
    // index [3, 2] smaller than src [3, 3]: src's uncovered column gets zero gradient
    check(CPU, t -> Indexing.scatterAdd(t[0], 1, idx, t[1]), Shape.of(3, 4), Shape.of(3, 3));
    check(CPU, t -> Indexing.scatterAdd(t[0], 0, ids(Shape.of(2, 2), DType.I64, 1, 1, 1, 0), t[1]), Shape.of(2, 2), Shape.of(2, 2));
  }

  @Test void scatterAddForwardByHand() {
    Tensor x = Tensor.zeros(Shape.of(2, 3), DType.F64, CPU);
    Tensor src = Tensor.of(new double[] {1, 2, 3, 4, 5, 6}, Shape.of(2, 3), DType.F64, CPU);
    Tensor out = Indexing.scatterAdd(x, 1, ids(Shape.of(2, 2), DType.I64, 2, 2, 0, 1), src);
    assertClose(new double[] {0, 0, 3, 4, 5, 0}, out.toDoubleArray(), 0, 0, "scatter_add");
    assertClose(new double[] {0, 0, 0, 0, 0, 0}, x.toDoubleArray(), 0, 0, "input untouched");
  }

  @Test void outOfRangeIndicesAreErrorsNamingIndexDimAndSize() {
    Tensor x = Tensor.zeros(Shape.of(3, 4), DType.F32, CPU);
    var e = assertThrows(TensorException.class, () -> Indexing.indexSelect(x, 1, ids(Shape.of(2), DType.I64, 1, 4)));
    assertTrue(e.getMessage().contains("index 4") && e.getMessage().contains("dim 1 of size 4"), e.getMessage());
    var n = assertThrows(TensorException.class, () -> Indexing.gather(x, 0, ids(Shape.of(1, 2), DType.I32, 0, -1)));
    assertTrue(n.getMessage().contains("index -1 at position [0, 1]") && n.getMessage().contains("dim 0 of size 3"), n.getMessage());
    var s = assertThrows(TensorException.class, () -> Indexing.scatterAdd(x, 0, ids(Shape.of(1, 1), DType.I64, 3), x));
    assertTrue(s.getMessage().contains("scatterAdd") && s.getMessage().contains("index 3"), s.getMessage());
    Tensor w = Tensor.zeros(Shape.of(5, 2), DType.F32, CPU);
    var m = assertThrows(TensorException.class, () -> Indexing.embedding(w, ids(Shape.of(2), DType.I64, 0, 5)));
    assertTrue(m.getMessage().contains("embedding") && m.getMessage().contains("index 5"), m.getMessage());
    var d = assertThrows(TensorException.class, () -> Indexing.indexSelect(x, 0, Tensor.zeros(Shape.of(1), DType.F32, CPU)));
    assertTrue(d.getMessage().contains("i32 or i64"), d.getMessage());
    var big = assertThrows(TensorException.class, () -> Indexing.gather(x, 0, ids(Shape.of(1, 5), DType.I64, 0, 0, 0, 0, 0)));
    assertTrue(big.getMessage().contains("dim 1"), big.getMessage());
  }
}
