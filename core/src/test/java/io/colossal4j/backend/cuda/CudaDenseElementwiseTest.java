package io.colossal4j.backend.cuda;

import static io.colossal4j.backend.cuda.CudaTestSupport.CPU;
import static io.colossal4j.backend.cuda.CudaTestSupport.assertClose;
import static io.colossal4j.backend.cuda.CudaTestSupport.gpu;
import static io.colossal4j.backend.cuda.CudaTestSupport.random;
import static io.colossal4j.backend.cuda.CudaTestSupport.rtol;
import static io.colossal4j.backend.cuda.CudaTestSupport.toGpu;
import static org.junit.jupiter.api.Assertions.fail;

import io.colossal4j.backend.BinaryOp;
import io.colossal4j.backend.UnaryOp;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The dense elementwise kernels (contiguous bf16/f32 operands, 8 elements per thread step) against their
 * twin, the strided kernels, run on the same values laid out with stride 2 (which the dense path does not
 * take): both compute the same float expression, so the results must be identical bit for bit, for every
 * unary and binary op, every mix of bf16 and f32 operands, and lengths that leave a tail (n % 8 != 0) or
 * have no full vector. One case per op kind is also checked against the scalar CPU reference.
 */
class CudaDenseElementwiseTest {
  private static final int[] LENGTHS = {1, 7, 8, 1003, 40_000};
  private static final DType[] TYPES = {DType.BF16, DType.F32};
  private final Random rnd = new Random(3);

  @Test void unaryAndConversionEqualTheStridedKernels() {
    for (int n : LENGTHS)
      for (DType tx : TYPES)
        for (DType to : TYPES) {
          Input x = input(n, tx);
          for (UnaryOp op : UnaryOp.values())
            same(op + " " + tx + "->" + to + " n=" + n, out -> gpu().kernels().unary(op, x.dense, out), out -> gpu().kernels().unary(op, x.strided, out), n, to);
          if (tx != to) same("convert " + tx + "->" + to + " n=" + n, out -> gpu().kernels().copy(x.dense, out), out -> gpu().kernels().copy(x.strided, out), n, to);
        }
  }

  @Test void binaryAndScalarEqualTheStridedKernels() {
    for (int n : LENGTHS)
      for (DType ta : TYPES)
        for (DType tb : TYPES)
          for (DType to : TYPES) {
            Input a = input(n, ta), b = input(n, tb);
            for (BinaryOp op : BinaryOp.values()) {
              String what = op + " " + ta + "," + tb + "->" + to + " n=" + n;
              same(what, out -> gpu().kernels().binary(op, a.dense, b.dense, out), out -> gpu().kernels().binary(op, a.strided, b.strided, out), n, to);
              if (tb == ta) same(what + " scalar", out -> gpu().kernels().binaryScalar(op, a.dense, 0.7, out),
                  out -> gpu().kernels().binaryScalar(op, a.strided, 0.7, out), n, to);
            }
          }
  }

  /**
   * More vectors than the dense kernels' grid has threads (it is capped at 32 blocks of 256 per multiprocessor), so
   * every thread takes several software-pipelined steps (the next vector loaded before this one's math) and a tail;
   * also in place (the output is the first operand), where each step's prefetch reads ahead of its own store.
   */
  @Test void longVectorsTakeSeveralPipelinedStepsPerThread() {
    int n = gpu().multiprocessors() * 32 * 256 * 8 * 2 + 5;
    Input a = input(n, DType.BF16), b = input(n, DType.BF16), f = input(n, DType.F32);
    same("GELU bf16 n=" + n, out -> gpu().kernels().unary(UnaryOp.GELU, a.dense, out), out -> gpu().kernels().unary(UnaryOp.GELU, a.strided, out), n, DType.BF16);
    same("GELU f32->bf16 n=" + n, out -> gpu().kernels().unary(UnaryOp.GELU, f.dense, out), out -> gpu().kernels().unary(UnaryOp.GELU, f.strided, out), n, DType.BF16);
    same("GELU_BACKWARD bf16 n=" + n, out -> gpu().kernels().binary(BinaryOp.GELU_BACKWARD, a.dense, b.dense, out),
        out -> gpu().kernels().binary(BinaryOp.GELU_BACKWARD, a.strided, b.strided, out), n, DType.BF16);
    same("MUL scalar f32 n=" + n, out -> gpu().kernels().binaryScalar(BinaryOp.MUL, f.dense, 0.7, out),
        out -> gpu().kernels().binaryScalar(BinaryOp.MUL, f.strided, 0.7, out), n, DType.F32);
    // in place: out = a + b over a copy of a, against the strided kernel
    same("ADD in place bf16 n=" + n, out -> {
      gpu().kernels().copy(a.dense, out);
      gpu().kernels().binary(BinaryOp.ADD, out, b.dense, out);
    }, out -> gpu().kernels().binary(BinaryOp.ADD, a.strided, b.strided, out), n, DType.BF16);
    for (Input in : new Input[] {a, b, f}) {
      in.dense.storage().release();
      in.strided.storage().release();
    }
  }

  @Test void denseResultsMatchTheScalarReference() {
    for (DType t : TYPES) {
      Tensor cpuA = random(rnd, Shape.of(1003), t, -3, 3), cpuB = random(rnd, Shape.of(1003), t, -3, 3);
      Tensor ref = Tensor.empty(Shape.of(1003), t, CPU), got = Tensor.empty(Shape.of(1003), t, gpu());
      CPU.kernels().binary(BinaryOp.GELU_BACKWARD, cpuA, cpuB, ref);
      gpu().kernels().binary(BinaryOp.GELU_BACKWARD, toGpu(cpuA), toGpu(cpuB), got);
      // float math against the double reference, then one rounding to t (the conformance suite's tolerance)
      assertClose(t + " gelu backward", ref, got, rtol(t), 1e-6);
      CPU.kernels().unary(UnaryOp.GELU, cpuA, ref);
      gpu().kernels().unary(UnaryOp.GELU, toGpu(cpuA), got);
      assertClose(t + " gelu", ref, got, rtol(t), 1e-6);
    }
  }

  /** The same values as a contiguous tensor and as a stride-2 view (the strided kernels' input). */
  private record Input(Tensor dense, Tensor strided) {}

  private Input input(int n, DType t) {
    Tensor cpu = random(rnd, Shape.of(n), t, -3, 3);
    Tensor dense = toGpu(cpu);
    Tensor wide = Tensor.empty(Shape.of(n, 2), t, gpu());
    Tensor strided = wide.view(Shape.of(n), new long[] {2}, 0);
    gpu().kernels().copy(dense, strided);
    return new Input(dense, strided);
  }

  private static void same(String what, java.util.function.Consumer<Tensor> dense, java.util.function.Consumer<Tensor> strided, int n, DType to) {
    Tensor a = Tensor.empty(Shape.of(n), to, gpu());
    Tensor wide = Tensor.empty(Shape.of(n, 2), to, gpu());
    Tensor b = wide.view(Shape.of(n), new long[] {2}, 0);
    gpu().kernels().fill(a, Double.NaN);
    dense.accept(a);
    strided.accept(b);
    double[] x = a.toDoubleArray(), y = b.toDoubleArray();
    for (int i = 0; i < n; i++)
      if (Double.doubleToLongBits(x[i]) != Double.doubleToLongBits(y[i]) && !(Double.isNaN(x[i]) && Double.isNaN(y[i])))
        fail(what + ": element " + i + ": dense " + x[i] + ", strided " + y[i]);
  }
}
