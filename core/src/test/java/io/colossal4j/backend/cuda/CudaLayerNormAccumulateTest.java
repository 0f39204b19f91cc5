package io.colossal4j.backend.cuda;

import static io.colossal4j.backend.cuda.CudaTestSupport.CPU;
import static io.colossal4j.backend.cuda.CudaTestSupport.gpu;
import static io.colossal4j.backend.cuda.CudaTestSupport.nearScaled;
import static io.colossal4j.backend.cuda.CudaTestSupport.poison;
import static io.colossal4j.backend.cuda.CudaTestSupport.random;
import static io.colossal4j.backend.cuda.CudaTestSupport.toGpu;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.colossal4j.autograd.Autograd;
import io.colossal4j.autograd.GradMode;
import io.colossal4j.backend.Backend;
import io.colossal4j.backend.BinaryOp;
import io.colossal4j.backend.Kernels;
import io.colossal4j.models.vit.Block;
import io.colossal4j.nn.ModuleContext;
import io.colossal4j.ops.Arith;
import io.colossal4j.ops.Views;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Layer norm's backward with the residual's pending gradient folded in (Kernels.layerNormBackwardAccumulate, used
 * by the autograd engine through Autograd.recordFolding): the fused kernels (ln_vec_bwd_wb / ln_vec_bwd with their
 * acc pointer, and the generic layernorm_bwd_f) against layerNormBackward followed by the separate add, at ViT-H's
 * width 1280 and GPT-2 medium's 1024 in bf16 and f32, several thousand rows (bf16 1280/1024 and f32 1024 take
 * ln_vec_bwd_wb, f32 1280 the generic kernel, and without weight gradients ln_vec_bwd); the fallback for a strided
 * pending gradient; a pre-norm ViT block's backward taking the fused path (the kernels' counter and the profile's
 * "backward accumulate" launches); and that block's gradients on CUDA against the CPU reference.
 */
class CudaLayerNormAccumulateTest {
  private final Random rnd = new Random(61);

  private static CudaKernels kernels() { return (CudaKernels) gpu().kernels(); }

  @Test void fusedAccumulateEqualsBackwardThenAdd() {
    for (DType t : new DType[] {DType.BF16, DType.F32})
      for (int n : new int[] {1280, 1024}) {
        check(t, 4099, n, false, true);   // 4099 rows: not a multiple of the 4 rows a block takes
        check(t, 1029, n, false, false);  // no weight gradients: the input-gradient-only kernels
      }
  }

  @Test void stridedPendingGradientFallsBackToTheSeparateAdd() {
    check(DType.BF16, 515, 1024, true, true);
    check(DType.F32, 515, 1280, true, true);
  }

  /**
   * gx from layerNormBackwardAccumulate(pending) against layerNormBackward then binary(ADD, pending, dx): the same
   * kernel computes dx in both (acc only changes its store: dx rounded to the dtype, then an uncontracted f32 add,
   * which is what the elementwise add computes), so they must agree bit for bit; gw and gb too (same sums). Both
   * are also checked against the CPU scalar reference's dx + pending, relative to each tensor's scale: 2^-6 for bf16
   * (dx and the sum may each round one ulp, 2^-7, the other way), 1e-5 for f32 (float against double statistics over
   * ~1000 columns); a wrong rule or a missing pending term errs by order 1.
   */
  private void check(DType t, int rows, int n, boolean strided, boolean weightGrads) {
    String what = t + " rows " + rows + " n " + n + (strided ? " strided pending" : "") + (weightGrads ? "" : " no weight gradients");
    Tensor xc = random(rnd, Shape.of(rows, n), t, -2, 2), gyc = random(rnd, Shape.of(rows, n), t, -1, 1);
    Tensor wc = random(rnd, Shape.of(n), t, 0.5, 1.5), bc = random(rnd, Shape.of(n), t, -0.5, 0.5);
    Tensor pc = random(rnd, strided ? Shape.of(n, rows) : Shape.of(rows, n), t, -1, 1);
    Kernels k = kernels();
    Tensor x = toGpu(xc), gy = toGpu(gyc), w = toGpu(wc), b = toGpu(bc);
    Tensor pendingDev = toGpu(pc), pending = strided ? Views.transpose(pendingDev, 0, 1) : pendingDev;
    Tensor pendingRef = strided ? Views.transpose(pc, 0, 1) : pc;
    Tensor mean = Tensor.empty(Shape.of(rows), DType.F32, gpu()), rstd = Tensor.empty(Shape.of(rows), DType.F32, gpu());
    k.layerNorm(x, w, b, 1e-6, Tensor.empty(x.shape(), t, gpu()), mean, rstd);

    Tensor dx = Tensor.empty(x.shape(), t, gpu());
    Tensor gw1 = weightGrads ? Tensor.empty(w.shape(), t, gpu()) : null, gb1 = weightGrads ? Tensor.empty(w.shape(), t, gpu()) : null;
    k.layerNormBackward(gy, x, w, mean, rstd, dx, gw1, gb1);
    Tensor separate = Tensor.empty(x.shape(), t, gpu());
    k.binary(BinaryOp.ADD, pending, dx, separate);

    Tensor gx = filled(x.shape(), t), gw2 = weightGrads ? filled(w.shape(), t) : null, gb2 = weightGrads ? filled(w.shape(), t) : null;
    long before = kernels().accumulatingLayerNormBackwards();
    k.layerNormBackwardAccumulate(gy, x, w, mean, rstd, pending, gx, gw2, gb2);
    assertEquals(before + (strided ? 0 : 1), kernels().accumulatingLayerNormBackwards(), what + ": fused in the kernel");
    assertArrayEquals(separate.toDoubleArray(), gx.toDoubleArray(), 0.0, what + ": gx");
    if (weightGrads) {
      assertArrayEquals(gw1.toDoubleArray(), gw2.toDoubleArray(), 0.0, what + ": gw");
      assertArrayEquals(gb1.toDoubleArray(), gb2.toDoubleArray(), 0.0, what + ": gb");
    }

    // the CPU scalar reference (double math) of the same statistics, rounded to t once, plus pending
    Tensor meanC = Tensor.empty(Shape.of(rows), DType.F32, CPU), rstdC = Tensor.empty(Shape.of(rows), DType.F32, CPU);
    CPU.kernels().layerNorm(xc, wc, bc, 1e-6, Tensor.empty(xc.shape(), t, CPU), meanC, rstdC);
    Tensor ref = Tensor.empty(xc.shape(), t, CPU);
    CPU.kernels().layerNormBackwardAccumulate(gyc, xc, wc, meanC, rstdC, pendingRef, ref, null, null);
    nearScaled(what + ": gx against the CPU reference", ref, gx, t == DType.BF16 ? 1.0 / 64 : 1e-5);
  }

  private static Tensor filled(Shape s, DType t) {
    Tensor g = Tensor.empty(s, t, gpu());
    g.backend().kernels().fill(g, poison(t));
    return g;
  }

  /**
   * A pre-norm ViT block (width 128, 2 heads of 64, 2 × 17 tokens) on CUDA: each backward folds both residual
   * gradients into norm2's and norm1's backward (the counter goes up by 2, and the profile's "backward accumulate"
   * label has 2 launches fewer than with Accumulation.SEPARATE), and its gradients match the separate pass and
   * the CPU reference.
   */
  @Test void preNormBlockBackwardTakesTheFusedPathAndMatchesTheCpu() {
    for (DType t : new DType[] {DType.F32, DType.BF16}) {
      Shape shape = Shape.of(2, 17, 128);
      Tensor xc = random(rnd, shape, t, -1, 1), gc = random(rnd, shape, t, -1, 1);
      Block ref = block(CPU, DType.F32, t), dev = block(gpu(), t, t);
      long before = kernels().accumulatingLayerNormBackwards();
      gpu().startProfile();
      List<double[]> folded = gradients(dev, toGpu(xc), toGpu(gc), Autograd.Accumulation.FOLDED);
      int foldedAdds = accumulateLaunches(gpu().stopProfile(1000));
      assertEquals(before + 2, kernels().accumulatingLayerNormBackwards(), t + ": norm1 and norm2 folded");
      Block dev2 = block(gpu(), t, t);
      gpu().startProfile();
      List<double[]> separate = gradients(dev2, toGpu(xc), toGpu(gc), Autograd.Accumulation.SEPARATE);
      int separateAdds = accumulateLaunches(gpu().stopProfile(1000));
      assertEquals(before + 2, kernels().accumulatingLayerNormBackwards(), t + ": nothing folded in the separate pass");
      assertEquals(separateAdds - 2, foldedAdds, t + ": two fewer launches under 'backward accumulate'");
      List<double[]> cpu = gradients(ref, Arith.cast(xc, DType.F32), Arith.cast(gc, DType.F32), Autograd.Accumulation.FOLDED);
      // folded against separate on the GPU: bit-identical where the rest of the backward is deterministic; within
      // 1e-6 (f32) / 2^-8 (bf16) of each tensor's scale so that a reordered reduction elsewhere cannot fail it.
      // Against the CPU (f32, double-accumulated): f32 GEMMs and reductions in float, 1e-4 of the scale; bf16, a
      // dozen chained roundings to bf16 (2^-8 each, partly cancelling), 4e-2 of the scale (the fused attention
      // test allows 2e-2 for attention alone).
      int differing = 0;
      for (int i = 0; i < folded.size(); i++) {
        String what = t + " gradient " + i;
        double[] f = folded.get(i), s = separate.get(i);
        for (int j = 0; j < f.length; j++) if (f[j] != s[j]) differing++;
        nearScaled(what + " folded vs separate", Tensor.of(s, Shape.of(s.length), DType.F64, CPU), Tensor.of(f, Shape.of(f.length), DType.F64, CPU),
            t == DType.F32 ? 1e-6 : 1.0 / 256);
        nearScaled(what + " vs CPU", Tensor.of(cpu.get(i), Shape.of(f.length), DType.F64, CPU), Tensor.of(f, Shape.of(f.length), DType.F64, CPU),
            t == DType.F32 ? 1e-4 : 4e-2);
      }
      System.out.println("[ln-accumulate] " + t + ": folded vs separate differ in " + differing + " elements; 'backward accumulate' launches "
          + separateAdds + " -> " + foldedAdds);
    }
  }

  /** A ViT block on {@code backend} in {@code dtype} holding the values of a seed-5 block of {@code valueType} (rounded to it). */
  private static Block block(Backend backend, DType dtype, DType valueType) {
    Block values = new Block(new ModuleContext(CPU, valueType, 5), 128, 2, 256, true, 0, 0, 1e-6);
    Block b = new Block(new ModuleContext(backend, dtype, 5), 128, 2, 256, true, 0, 0, 1e-6);
    Map<String, Tensor> src = values.namedParameters();
    for (var e : b.namedParameters().entrySet()) {
      Tensor v = src.get(e.getKey());
      Tensor on = backend == CPU ? v : toGpu(v);
      GradMode.noGrad(() -> backend.kernels().copy(on, e.getValue()));
    }
    return b;
  }

  /** The block input's gradient then every parameter's, the input a non-leaf (x·1) as inside a model. */
  private static List<double[]> gradients(Block block, Tensor x, Tensor g, Autograd.Accumulation accumulation) {
    Tensor leaf = x.requiresGrad(true);
    Tensor out = block.forward(Arith.mulScalar(leaf, 1.0));
    Autograd.backward(out, g, false, accumulation);
    List<double[]> grads = new ArrayList<>();
    grads.add(leaf.grad().toDoubleArray());
    for (Tensor p : block.parameters()) grads.add(p.grad().toDoubleArray());
    return grads;
  }

  /** Launches filed under "backward accumulate" in a profile table (its first section: rows by GPU time). */
  private static int accumulateLaunches(String profile) {
    int launches = 0;
    for (String line : profile.lines().toList()) {
      if (line.startsWith("-- most GPU idle")) break;
      if (!line.startsWith("backward accumulate ")) continue;
      String[] f = line.trim().split("\\s+");
      launches += Integer.parseInt(f[f.length - 4]);   // label, kernel, then count and three times
    }
    return launches;
  }
}
