package io.colossal4j.backend.cuda;

import static io.colossal4j.backend.cuda.CudaTestSupport.CPU;
import static io.colossal4j.backend.cuda.CudaTestSupport.assertClose;
import static io.colossal4j.backend.cuda.CudaTestSupport.outputs;
import static io.colossal4j.backend.cuda.CudaTestSupport.random;
import static io.colossal4j.backend.cuda.CudaTestSupport.toGpu;

import io.colossal4j.backend.ReduceOp;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Sums over the leading dims of contiguous bf16/f32 tensors (a linear layer's bias gradient) take the
 * vectorised column-sum kernel; compared with the scalar CPU reference, output poisoned. The shapes cover
 * one and two leading dims, row counts that do not divide into the chunks, column counts that are not a
 * multiple of the 512 columns of a block, and an odd column count (which falls back to the generic kernel).
 */
class CudaColumnSumTest {
  @Test void sumsOverLeadingDimsMatchTheReference() {
    Random r = new Random(5);
    int[][] shapes = {{1000, 130}, {4, 333, 1026}, {64, 2}, {18464 / 8, 1280}, {257, 7}};
    int[][] dims = {{0}, {0, 1}, {0}, {0}, {0}};
    for (DType t : new DType[] {DType.F32, DType.BF16}) {
      for (int i = 0; i < shapes.length; i++) {
        Tensor x = random(r, Shape.of(shapes[i]), t, -1, 1);
        int[] keep = shapes[i].clone();
        for (int d : dims[i]) keep[d] = 1;
        Tensor[] out = outputs(Shape.of(keep), t);
        CPU.kernels().reduce(ReduceOp.SUM, x, dims[i], out[0]);
        CudaTestSupport.gpu().kernels().reduce(ReduceOp.SUM, toGpu(x), dims[i], out[1]);
        // f32 partial sums in another order: sums of up to ~2300 terms of |x| < 1 (1e-5 relative, 1e-3
        // absolute); bf16: the reference rounds its double sum once to bf16, we round an f32 sum once: both
        // within half a bf16 ulp of the exact sum, so they differ by at most one ulp (2^-7 relative)
        double rtol = t == DType.F32 ? 1e-5 : 1.6e-2, atol = t == DType.F32 ? 1e-3 : 0.05;
        assertClose(t + " sum over " + java.util.Arrays.toString(dims[i]) + " of " + Shape.of(shapes[i]), out[0], out[1], rtol, atol);
      }
    }
  }

  /** Sums of every element of large tensors (the multi-block path) into f32 and f64 scalars, and a sum of squares. */
  @Test void fullSumsMatchTheReference() {
    Random r = new Random(8);
    for (DType t : new DType[] {DType.F32, DType.BF16})
      for (DType o : new DType[] {DType.F32, DType.F64}) {
        Tensor x = random(r, Shape.of(1000, 333), t, -1, 1);
        Tensor ref = Tensor.empty(Shape.of(1, 1), o, CPU);
        Tensor got = Tensor.empty(Shape.of(1, 1), o, CudaTestSupport.gpu());
        CudaTestSupport.gpu().kernels().fill(got, Double.NaN);
        CPU.kernels().reduce(ReduceOp.SUM, x, new int[] {0, 1}, ref);
        CudaTestSupport.gpu().kernels().reduce(ReduceOp.SUM, toGpu(x), new int[] {0, 1}, got);
        // 333000 terms of |x| < 1 summing to about sqrt(333000)/sqrt(3) ~ 333: float partial sums of ~600 terms per
        // thread, then a tree; 1e-3 absolute covers float rounding of the partials (the reference sums in double)
        assertClose(t + " -> " + o + " full sum", ref, got, 1e-5, o == DType.F64 ? 1e-6 : 2e-3);
      }
  }
}
