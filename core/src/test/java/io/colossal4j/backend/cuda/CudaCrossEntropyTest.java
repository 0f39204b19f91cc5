package io.colossal4j.backend.cuda;

import static io.colossal4j.backend.cuda.CudaTestSupport.CPU;
import static io.colossal4j.backend.cuda.CudaTestSupport.gpu;
import static io.colossal4j.backend.cuda.CudaTestSupport.nearScaled;
import static io.colossal4j.backend.cuda.CudaTestSupport.random;
import static io.colossal4j.backend.cuda.CudaTestSupport.toGpu;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.autograd.Autograd;
import io.colossal4j.ops.Arith;
import io.colossal4j.ops.Loss;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The fused cross-entropy kernels (one pass forward, one pass backward, only the row log-sum-exp saved) against the
 * composite on the scalar CPU backend in f64 from the same inputs: mean and per-row losses and the logits' gradient,
 * bf16 and f32 logits, class counts of a ViT head and of a GPT vocabulary slice, some targets ignored.
 */
class CudaCrossEntropyTest {
  private final Random rnd = new Random(17);

  @Test void fusedKernelsMatchTheF64Composite() {
    for (DType t : new DType[] {DType.BF16, DType.F32}) {
      for (int[] nc : new int[][] {{64, 1000}, {37, 50304 / 8}, {5, 8}}) {
        int n = nc[0], c = nc[1];
        Tensor logits = random(rnd, Shape.of(n, c), t, -4, 4);
        long[] targets = new long[n];
        for (int i = 0; i < n; i++) targets[i] = i % 7 == 3 ? -100 : rnd.nextInt(c);
        Tensor tCpu = Tensor.of(targets, Shape.of(n), DType.I64, CPU);
        for (Loss.Reduction red : new Loss.Reduction[] {Loss.Reduction.MEAN, Loss.Reduction.NONE}) {
          var opts = Loss.CrossEntropyOptions.DEFAULT.withReduction(red);
          Tensor ref = Arith.cast(logits, DType.F64).requiresGrad(true);
          Tensor lossRef = Loss.crossEntropy(ref, tCpu, opts);
          Tensor dev = toGpu(logits).requiresGrad(true), tDev = toGpu(tCpu);
          assertTrue(gpu().kernels().fusedCrossEntropy(dev, tDev), "the fused kernels should take " + dev.shape() + " " + t);
          Tensor loss = Loss.crossEntropy(dev, tDev, opts);
          Tensor weights = random(rnd, lossRef.shape(), DType.F64, 0.5, 1.5);
          Autograd.backward(io.colossal4j.ops.Reduce.sum(Arith.mul(lossRef, weights)));
          Autograd.backward(io.colossal4j.ops.Reduce.sum(Arith.mul(Arith.cast(loss, DType.F64), toGpu(weights))));
          String what = t + " " + n + "x" + c + " " + red;
          // f32 logsumexp of up to 50k terms against f64: ~1e-6 relative; bf16: each loss and gradient rounded once
          // to 8 significant bits (2^-8), and the weights' upstream gradient in bf16 adds one more rounding
          double tol = t == DType.F32 ? 2e-5 : 1.6e-2;
          nearScaled(what + " loss", lossRef, loss, tol);
          nearScaled(what + " grad", ref.grad(), dev.grad(), tol);
        }
      }
    }
  }

}
