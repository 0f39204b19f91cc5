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
 * layout every linear layer uses, in f32 and bf16, with the output poisoned so an unwritten element fails.
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
}
