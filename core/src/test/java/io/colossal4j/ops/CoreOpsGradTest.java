package io.colossal4j.ops;

import static io.colossal4j.testing.GradCheck.assertClose;
import static io.colossal4j.testing.GradCheck.check;
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
import java.util.List;
import org.junit.jupiter.api.Test;

/** Gradients of the elementwise, view, reduction and matmul ops against finite differences (f64). */
class CoreOpsGradTest {
  static final Backend CPU = CpuBackend.reference();

  @Test void broadcastingArithmetic() {
    check(CPU, t -> Arith.add(t[0], t[1]), Shape.of(3, 4), Shape.of(4));
    check(CPU, t -> Arith.sub(t[0], t[1]), Shape.of(2, 1, 4), Shape.of(3, 1));
    check(CPU, t -> Arith.mul(t[0], t[1]), Shape.of(2, 3, 4), Shape.of(1, 3, 1));
    check(CPU, t -> Arith.div(t[0], Arith.addScalar(Arith.square(t[1]), 1)), Shape.of(3, 4), Shape.of(3, 1));
    check(CPU, t -> Arith.maximum(t[0], t[1]), Shape.of(5, 2), Shape.of(2));
  }

  @Test void unaryMath() {
    check(CPU, t -> Arith.exp(t[0]), Shape.of(7));
    check(CPU, t -> Arith.log(Arith.addScalar(Arith.square(t[0]), 0.5)), Shape.of(7));
    check(CPU, t -> Arith.sqrt(Arith.addScalar(Arith.square(t[0]), 0.5)), Shape.of(7));
    check(CPU, t -> Arith.rsqrt(Arith.addScalar(Arith.square(t[0]), 0.5)), Shape.of(7));
    check(CPU, t -> Arith.tanh(t[0]), Shape.of(7));
    check(CPU, t -> Arith.erf(t[0]), Shape.of(7));
    check(CPU, t -> Arith.sigmoid(t[0]), Shape.of(7));
    check(CPU, t -> Arith.gelu(t[0]), Shape.of(9));
    check(CPU, t -> Arith.geluTanh(t[0]), Shape.of(9));
    check(CPU, t -> Arith.silu(t[0]), Shape.of(9));
    check(CPU, t -> Arith.relu(t[0]), Shape.of(9));
    check(CPU, t -> Arith.abs(t[0]), Shape.of(9));
    check(CPU, t -> Arith.pow(Arith.addScalar(Arith.square(t[0]), 0.1), 1.7), Shape.of(6));
    check(CPU, t -> Arith.pow(Arith.addScalar(Arith.square(t[0]), 0.5), t[1]), Shape.of(2, 3), Shape.of(3));
  }

  @Test void viewsIncludingNonContiguous() {
    check(CPU, t -> Arith.mul(Views.transpose(t[0], 0, 1), t[1]), Shape.of(3, 4), Shape.of(4, 3));
    check(CPU, t -> Views.reshape(Views.permute(t[0], 2, 0, 1), 4, -1), Shape.of(2, 3, 4));
    check(CPU, t -> Views.narrow(Views.transpose(t[0], 0, 1), 0, 1, 2), Shape.of(3, 4));
    check(CPU, t -> Arith.mul(Views.expand(t[0], 3, 4), t[1]), Shape.of(1, 4), Shape.of(3, 4));
    check(CPU, t -> Views.cat(1, t[0], Views.transpose(t[1], 0, 1)), Shape.of(2, 3), Shape.of(2, 2));
    check(CPU, t -> Views.stack(0, List.of(t[0], t[1])), Shape.of(2, 3), Shape.of(2, 3));
    check(CPU, t -> Arith.mul(Views.split(t[0], 2, 1).get(1), Views.chunk(t[0], 2, 1).get(0)), Shape.of(3, 4));
    check(CPU, t -> Views.squeeze(Views.unsqueeze(Views.select(t[0], 1, 2), -1), 1), Shape.of(3, 4));
  }

  @Test void reductions() {
    check(CPU, t -> Reduce.sum(t[0], false, 1), Shape.of(3, 4, 2));
    check(CPU, t -> Reduce.sum(Views.transpose(t[0], 0, 2), true, 0, 2), Shape.of(3, 4, 2));
    check(CPU, t -> Reduce.mean(t[0], false, -1), Shape.of(3, 5));
    check(CPU, t -> Reduce.amax(t[0], false, 1), Shape.of(4, 6));
    check(CPU, t -> Reduce.var(t[0], 1, true, 1), Shape.of(3, 5));
    check(CPU, t -> Reduce.var(t[0], 0, false), Shape.of(3, 5));
    check(CPU, t -> Reduce.logSumExp(t[0], false, 1), Shape.of(3, 5));
  }

  @Test void matmulBatchedAndBroadcast() {
    check(CPU, t -> LinAlg.matmul(t[0], t[1]), Shape.of(3, 4), Shape.of(4, 5));
    check(CPU, t -> LinAlg.matmul(t[0], t[1]), Shape.of(2, 3, 4), Shape.of(4, 2));
    check(CPU, t -> LinAlg.matmul(t[0], Views.transpose(t[1], -1, -2)), Shape.of(2, 1, 3, 4), Shape.of(3, 5, 4));
    check(CPU, t -> LinAlg.matmul(t[0], t[1]), Shape.of(4), Shape.of(4, 3));
    check(CPU, t -> LinAlg.linear(t[0], t[1], t[2]), Shape.of(2, 3, 4), Shape.of(5, 4), Shape.of(5));
  }

  @Test void matmulForwardByHand() {
    Tensor a = Tensor.of(new double[] {1, 2, 3, 4, 5, 6}, Shape.of(2, 3), DType.F32, CPU);
    Tensor b = Tensor.of(new double[] {7, 8, 9, 10, 11, 12}, Shape.of(3, 2), DType.F32, CPU);
    assertClose(new double[] {58, 64, 139, 154}, LinAlg.matmul(a, b).toDoubleArray(), 0, 0, "matmul");
  }

  @Test void gradientAccumulatesAndHooksFireOnce() {
    Tensor w = Tensor.of(new double[] {1, 2}, Shape.of(2), DType.F64, CPU).requiresGrad(true);
    int[] fired = {0};
    w.addGradReadyHook(t -> fired[0]++);
    // w used twice: the hook must fire after both contributions
    Tensor y = Reduce.sum(Arith.add(Arith.mul(w, w), Arith.mulScalar(w, 3)));
    Autograd.backward(y);
    assertEquals(1, fired[0]);
    assertClose(new double[] {5, 7}, w.grad().toDoubleArray(), 1e-12, 0, "d/dw (w^2 + 3w)");
    Autograd.backward(Reduce.sum(Arith.mulScalar(w, 2)));
    assertClose(new double[] {7, 9}, w.grad().toDoubleArray(), 1e-12, 0, "accumulated");
  }

  @Test void secondBackwardWithoutRetainGraphIsAnError() {
    Tensor w = Tensor.of(new double[] {1, 2}, Shape.of(2), DType.F64, CPU).requiresGrad(true);
    Tensor y = Reduce.sum(Arith.exp(w));
    Autograd.backward(y, Tensor.scalar(1, DType.F64, CPU), true);
    Autograd.backward(y, Tensor.scalar(1, DType.F64, CPU), false);
    TensorException e = assertThrows(TensorException.class, () -> Autograd.backward(y));
    assertTrue(e.getMessage().contains("retainGraph"), e.getMessage());
  }

  @Test void badShapesNameTheOpAndShapes() {
    Tensor a = Tensor.zeros(Shape.of(2, 3), DType.F32, CPU);
    Tensor b = Tensor.zeros(Shape.of(4, 3), DType.F32, CPU);
    var e = assertThrows(TensorException.class, () -> Arith.add(a, b));
    assertTrue(e.getMessage().contains("[2, 3]") && e.getMessage().contains("[4, 3]"), e.getMessage());
    var m = assertThrows(TensorException.class, () -> LinAlg.matmul(a, b));
    assertTrue(m.getMessage().contains("matmul"), m.getMessage());
    var d = assertThrows(TensorException.class, () -> Reduce.sum(a, false, 2));
    assertTrue(d.getMessage().contains("dim 2"), d.getMessage());
  }

  @Test void noGradRecordsNothing() {
    Tensor w = Tensor.of(new double[] {1, 2}, Shape.of(2), DType.F64, CPU).requiresGrad(true);
    Tensor y = io.colossal4j.autograd.GradMode.noGrad(() -> Arith.mul(w, w));
    assertTrue(y.isLeaf() && !y.requiresGrad());
    Tensor d = Arith.mul(w, w).detach();
    assertTrue(d.isLeaf() && !d.requiresGrad());
  }
}
