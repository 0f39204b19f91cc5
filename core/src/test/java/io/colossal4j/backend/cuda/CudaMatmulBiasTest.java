package io.colossal4j.backend.cuda;

import static io.colossal4j.backend.cuda.CudaTestSupport.CPU;
import static io.colossal4j.backend.cuda.CudaTestSupport.assertClose;
import static io.colossal4j.backend.cuda.CudaTestSupport.like;
import static io.colossal4j.backend.cuda.CudaTestSupport.outputs;
import static io.colossal4j.backend.cuda.CudaTestSupport.random;
import static io.colossal4j.backend.cuda.CudaTestSupport.toGpu;

import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The linear layer's GEMM with the bias in cuBLASLt's epilogue against the scalar CPU reference (which writes
 * the bias and accumulates the product): x [M, K] @ w^T (a transposed view of w [N, K]) + bias [N], the
 * layout every linear layer uses, in f32 and bf16, with the output poisoned so an unwritten element fails; and the
 * backward's weight and bias gradients in one call (cuBLASLt's BGRADB epilogue) against the reference's GEMM and
 * column sum.
 */
class CudaMatmulBiasTest {
  @Test void biasEpilogueMatchesTheReference() {
    Random r = new Random(11);
    for (DType t : new DType[] {DType.F32, DType.BF16}) {
      for (int[] mnk : new int[][] {{256, 384, 128}, {77, 130, 64}, {1, 64, 32}}) {
        int m = mnk[0], n = mnk[1], kk = mnk[2];
        Tensor x = random(r, Shape.of(m, kk), t, -1, 1), w = random(r, Shape.of(n, kk), t, -1, 1), b = random(r, Shape.of(n), t, -1, 1);
        Tensor wt = w.view(Shape.of(kk, n), new long[] {1, kk}, 0);
        Tensor[] out = outputs(Shape.of(m, n), t);
        CPU.kernels().matmulBias(x, wt, b, out[0]);
        Tensor wg = toGpu(w);
        CudaTestSupport.gpu().kernels().matmulBias(toGpu(x), like(wg, wt), toGpu(b), out[1]);
        // f32: exact products, sums of K terms in another order (1e-5 relative); bf16: one rounding of the
        // output to 8 significant bits (2^-8 relative) on values up to about sqrt(K)
        double rtol = t == DType.F32 ? 1e-5 : 1e-2, atol = t == DType.F32 ? 1e-4 : 0.05;
        assertClose(t + " " + m + "x" + n + "x" + kk, out[0], out[1], rtol, atol);
      }
    }
  }

  @Test void weightAndBiasGradientsInOneCallMatchTheReference() {
    Random r = new Random(12);
    for (DType t : new DType[] {DType.F32, DType.BF16}) {
      for (int[] rio : new int[][] {{1000, 128, 384}, {577, 80, 240}, {64, 32, 16}}) {
        int rows = rio[0], in = rio[1], outF = rio[2];
        Tensor g = random(r, Shape.of(rows, outF), t, -1, 1), x = random(r, Shape.of(rows, in), t, -1, 1);
        Tensor[] gw = outputs(Shape.of(outF, in), t), gb = outputs(Shape.of(outF), t);
        CPU.kernels().linearWeightGrad(g, x, gw[0], gb[0]);
        CudaTestSupport.gpu().kernels().linearWeightGrad(toGpu(g), toGpu(x), gw[1], gb[1]);
        // sums of `rows` products (or terms) of |v| < 1 in another order: f32 1e-5 relative on values up to about
        // sqrt(rows), bf16 one rounding of each result to 8 significant bits (2^-8 relative, 2^-7 between two)
        double rtol = t == DType.F32 ? 1e-5 : 1.6e-2, atol = t == DType.F32 ? 1e-3 : 0.1;
        assertClose(t + " gw " + rows + "x" + in + "x" + outF, gw[0], gw[1], rtol, atol);
        assertClose(t + " gb " + rows + "x" + outF, gb[0], gb[1], rtol, atol);
      }
    }
  }
}
