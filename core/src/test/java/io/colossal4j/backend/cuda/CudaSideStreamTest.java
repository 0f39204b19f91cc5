package io.colossal4j.backend.cuda;

import static io.colossal4j.backend.cuda.CudaTestSupport.gpu;
import static io.colossal4j.backend.cuda.CudaTestSupport.random;
import static io.colossal4j.backend.cuda.CudaTestSupport.toGpu;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.autograd.Autograd;
import io.colossal4j.autograd.GradMode;
import io.colossal4j.backend.Backend;
import io.colossal4j.backend.BinaryOp;
import io.colossal4j.ops.Arith;
import io.colossal4j.ops.LinAlg;
import io.colossal4j.ops.Reduce;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Weight gradients on the side stream ({@code CudaKernels.linearWeightGrad}, {@code CudaBackend.sideBegin}): a stack
 * of ViT-shaped MLP blocks (bf16, residual stream [2, 577, 1280], hidden 5120), forward and backward inside a step
 * (so blocks the side GEMMs read are released and reused by the main stream while those GEMMs may still run),
 * with one weight shared by two blocks (its second contribution is summed into the first, which a side GEMM wrote)
 * and a gradient-ready hook that reads a gradient on the main stream. Every gradient, the hook's copy and the loss
 * must equal, bit for bit, those of the same work with the side stream off: the same cuBLASLt plans compute the
 * same GEMMs, so any difference is a race (a block overwritten while read, a gradient read before written).
 */
class CudaSideStreamTest {
  private static final int BLOCKS = 6, TOKENS = 577, WIDTH = 1280, HIDDEN = 5120;

  @Test void sideStreamGradientsEqualTheMainStreamsBitForBit() {
    CudaBackend gpu = gpu();
    Random rnd = new Random(41);
    List<Tensor> cpuParams = new ArrayList<>();
    double s1 = 1 / Math.sqrt(WIDTH), s2 = 1 / Math.sqrt(HIDDEN);
    for (int b = 0; b < BLOCKS; b++) {
      cpuParams.add(random(rnd, Shape.of(HIDDEN, WIDTH), DType.BF16, -s1, s1));
      cpuParams.add(random(rnd, Shape.of(HIDDEN), DType.BF16, -0.1, 0.1));
      cpuParams.add(random(rnd, Shape.of(WIDTH, HIDDEN), DType.BF16, -s2, s2));
      cpuParams.add(random(rnd, Shape.of(WIDTH), DType.BF16, -0.1, 0.1));
    }
    Tensor xc = random(rnd, Shape.of(2, TOKENS, WIDTH), DType.BF16, -1, 1);
    Tensor gc = random(rnd, Shape.of(2, TOKENS, WIDTH), DType.BF16, -1, 1);
    long jobs0 = gpu.sideJobs();
    double[][] off = run(gpu, cpuParams, xc, gc, false);
    assertEquals(jobs0, gpu.sideJobs(), "no side job with the side stream off");
    double[][] on = run(gpu, cpuParams, xc, gc, true);
    // every fc1/fc2 weight gradient but the shared weight's second contribution went to the side stream
    assertEquals(2 * BLOCKS - 1, gpu.sideJobs() - jobs0, "side jobs");
    double[][] again = run(gpu, cpuParams, xc, gc, true);
    for (int i = 0; i < off.length; i++) {
      assertArrayEquals(off[i], on[i], 0.0, "tensor " + i + " (side stream on vs off)");
      assertArrayEquals(on[i], again[i], 0.0, "tensor " + i + " (second run with the side stream)");
    }
    boolean anyNonZero = false;
    for (double v : on[2]) anyNonZero |= v != 0;
    assertTrue(anyNonZero, "gradients are not all zero");
  }

  /**
   * One forward and backward with the side stream on or off: {loss, the hook's square of block 0's fc2 weight
   * gradient, the input's gradient, then every parameter's gradient}. Block 3 uses block 1's fc1 weight (shared).
   */
  private static double[][] run(CudaBackend gpu, List<Tensor> cpuParams, Tensor xc, Tensor gc, boolean side) {
    gpu.useSideStream(side);
    try {
      List<Tensor> params = new ArrayList<>();
      for (Tensor p : cpuParams) params.add(toGpu(p).requiresGrad(true));
      // w², written by a main-stream kernel as soon as the gradient is ready, into a tensor made outside the step
      Tensor hookRead = Tensor.empty(Shape.of(WIDTH, HIDDEN), DType.BF16, gpu);
      params.get(2).addGradReadyHook(w -> gpu.kernels().binary(BinaryOp.MUL, w.grad(), w.grad(), hookRead));
      Tensor x = toGpu(xc).requiresGrad(true);
      List<double[]> out = new ArrayList<>();
      try (Backend.StepScope step = gpu.openStep()) {
        Tensor h = x;
        for (int b = 0; b < BLOCKS; b++) {
          Tensor w1 = params.get(4 * (b == 3 ? 1 : b)), b1 = params.get(4 * b + 1), w2 = params.get(4 * b + 2), b2 = params.get(4 * b + 3);
          Tensor a = LinAlg.linearGelu(h, w1, b1, LinAlg.Gelu.EXACT);
          h = Arith.add(h, LinAlg.linear(a, w2, b2));
        }
        Tensor g = toGpu(gc), y = h;
        Tensor loss = GradMode.noGrad(() -> Reduce.sum(Arith.cast(Arith.mul(y, g), DType.F32)));
        Autograd.backward(y, g, false);
        out.add(loss.toDoubleArray());
      }
      out.add(hookRead.toDoubleArray());
      out.add(x.grad().toDoubleArray());
      for (Tensor p : params) if (p.grad() != null) out.add(p.grad().toDoubleArray());
      return out.toArray(double[][]::new);
    } finally {
      gpu.useSideStream(true);
    }
  }
}
