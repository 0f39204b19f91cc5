package io.colossal4j.backend.cpu.simd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import io.colossal4j.backend.BinaryOp;
import io.colossal4j.backend.UnaryOp;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.ops.Views;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The elementwise kernels on tensors large enough to be split over threads (from 4·2^14 elements), where the
 * other suites use small ones: a contiguous run cut into pseudo-rows with a short last one, rows with a broadcast
 * bias, a transposed operand and an output aliasing its first input, on 1, 2 and 3 threads. +, − and × are exactly
 * rounded, so the result must equal the reference kernels' bit for bit; GELU (one vector function per element)
 * must equal the one-thread result bit for bit, whatever the split.
 */
class ElementwiseSplitTest {
  private static final Random RND = new Random(11);

  private static float[] data(int n) {
    float[] d = new float[n];
    for (int i = 0; i < n; i++) d[i] = RND.nextFloat() * 8 - 4;
    return d;
  }

  @Test void binaryOpsOnSplitTensorsEqualTheReference() {
    int n = 5 * (1 << 14) + 21;
    float[] a = data(n), b = data(n), bias = data(1001), rows = data(300 * 1001), sq = data(400 * 400), sq2 = data(400 * 400);
    CpuBackend ref = CpuBackend.reference();
    for (int threads : new int[] {1, 2, 3})
      try (CpuBackend cpu = CpuBackend.create(threads)) {
        for (BinaryOp op : new BinaryOp[] {BinaryOp.ADD, BinaryOp.SUB, BinaryOp.MUL, BinaryOp.MAX}) {
          String what = op + " on " + threads + " threads";
          assertArrayEquals(run(ref, op, a, b, Shape.of(n), null, false), run(cpu, op, a, b, Shape.of(n), null, false), what + ", contiguous");
          assertArrayEquals(run(ref, op, a, b, Shape.of(n), null, true), run(cpu, op, a, b, Shape.of(n), null, true), what + ", in place");
          assertArrayEquals(run(ref, op, rows, bias, Shape.of(300, 1001), Shape.of(1001), false),
              run(cpu, op, rows, bias, Shape.of(300, 1001), Shape.of(1001), false), what + ", bias rows");
          assertArrayEquals(transposed(ref, op, sq, sq2), transposed(cpu, op, sq, sq2), what + ", transposed b");
        }
        float[] x = data(n), one;
        try (CpuBackend single = CpuBackend.create(1)) { one = gelu(single, x); }
        assertArrayEquals(one, gelu(cpu, x), "gelu on " + threads + " threads");
      }
  }

  /** op(a, b) with b of shape bShape (broadcast to shape) or, when null, of the same shape; in place writes into a. */
  private static float[] run(CpuBackend be, BinaryOp op, float[] a, float[] b, Shape shape, Shape bShape, boolean inPlace) {
    Tensor ta = Tensor.of(a, shape, be), tb = Tensor.of(b, bShape == null ? shape : bShape, be);
    if (bShape != null) tb = Views.expand(tb, shape.toArray());
    Tensor out = inPlace ? ta : Tensor.empty(shape, DType.F32, be);
    be.kernels().binary(op, ta, tb, out);
    return out.toFloatArray();
  }

  private static float[] transposed(CpuBackend be, BinaryOp op, float[] a, float[] b) {
    Tensor ta = Tensor.of(a, Shape.of(400, 400), be), tb = Views.transpose(Tensor.of(b, Shape.of(400, 400), be), 0, 1);
    Tensor out = Tensor.empty(Shape.of(400, 400), DType.F32, be);
    be.kernels().binary(op, ta, tb, out);
    return out.toFloatArray();
  }

  private static float[] gelu(CpuBackend be, float[] x) {
    Tensor t = Tensor.of(x, Shape.of(x.length), be), out = Tensor.empty(Shape.of(x.length), DType.F32, be);
    be.kernels().unary(UnaryOp.GELU, t, out);
    return out.toFloatArray();
  }
}
