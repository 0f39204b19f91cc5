package io.colossal4j.step;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.colossal4j.backend.Backend;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Top-1 accuracy (computed on the logits' device) against a host count written out here, and top-k (host)
 * on hand-made cases: ties go to the lower index, targets outside the classes never count.
 */
class AccuracyTest {
  private final Backend cpu = CpuBackend.create(2);

  @Test void top1CountsRowsWhoseFirstMaximumIsTheTarget() {
    // row 0: max at 2 (target 2, correct); row 1: tie between 0 and 3, target 3 (the first maximum is 0: wrong);
    // row 2: tie, target 0 (correct); row 3: ignored target -100; row 4: target 4 (out of range)
    double[] l = {0, 1, 5, 2, 7, 1, 0, 7, 7, 1, 0, 7, 1, 2, 3, 4, 0, 0, 0, 0};
    Tensor logits = Tensor.of(l, Shape.of(5, 4), DType.F32, cpu);
    Tensor targets = Tensor.of(new long[] {2, 3, 0, -100, 4}, Shape.of(5), DType.I64, cpu);
    assertEquals(2, Accuracy.correctTopK(logits, targets, 1));
    assertEquals(3, Accuracy.correctTopK(logits, targets, 2), "row 1's target is second; row 3 ignored; row 4 out of range");
  }

  @Test void top1MatchesAHostCountOnRandomLogitsWithLeadingDims() {
    Random r = new Random(4);
    int b = 3, t = 50, c = 37;
    double[] l = new double[b * t * c];
    for (int i = 0; i < l.length; i++) l[i] = r.nextInt(9);   // small integers: many ties
    long[] y = new long[b * t];
    for (int i = 0; i < y.length; i++) y[i] = r.nextInt(c + 2) - 1;   // some -1 and c: never correct
    long expected = 0;
    for (int row = 0; row < y.length; row++) {
      int best = 0;
      for (int j = 1; j < c; j++) if (l[row * c + j] > l[row * c + best]) best = j;
      if (best == y[row]) expected++;
    }
    Tensor logits = Tensor.of(l, Shape.of(b, t, c), DType.BF16, cpu);
    Tensor targets = Tensor.of(y, Shape.of(b * t), DType.I64, cpu);
    assertEquals(expected, Accuracy.correctTopK(logits, targets, 1));
  }

  @Test void rowsAndTargetsMustAgree() {
    Tensor logits = Tensor.of(new double[6], Shape.of(2, 3), DType.F32, cpu);
    Tensor targets = Tensor.of(new long[] {0, 1, 2}, Shape.of(3), DType.I64, cpu);
    assertThrows(IllegalArgumentException.class, () -> Accuracy.correctTopK(logits, targets, 1));
  }
}
