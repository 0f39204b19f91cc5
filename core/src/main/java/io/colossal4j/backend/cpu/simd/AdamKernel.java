package io.colossal4j.backend.cpu.simd;

import static io.colossal4j.backend.cpu.CpuBackend.segment;
import static io.colossal4j.backend.cpu.simd.VMath.S;

import io.colossal4j.backend.AdamUpdate;
import io.colossal4j.backend.cpu.CpuParallel;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;

/**
 * The fused Adam/AdamW step for contiguous f32 tensors ({@link AdamUpdate}'s rule): one pass reads p, g, m, v
 * and writes p, m, v, instead of about ten elementwise kernels each reading and writing whole tensors.
 * Arithmetic is f32 with the scalars (1 − lr·wd, 1/(1−β1ᵗ), 1/sqrt(1−β2ᵗ)) rounded once, as PyTorch's
 * fused CPU step does; the reference {@code ScalarAdam} computes the same rule in double. Long tensors are
 * split over the pool in fixed chunks; each element is computed by one thread, so results do not depend on
 * the thread count.
 */
final class AdamKernel {
  private AdamKernel() {}

  private static final ByteOrder NATIVE = ByteOrder.nativeOrder();
  private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;
  private static final int L = S.length();

  static boolean supports(AdamUpdate.Param prm) {
    for (Tensor t : new Tensor[] {prm.param(), prm.grad(), prm.expAvg(), prm.expAvgSq()})
      if (t.dtype() != DType.F32 || !t.isContiguous()) return false;
    return true;
  }

  static void step(CpuParallel par, AdamUpdate.Param prm, AdamUpdate u) {
    Tensor p = prm.param(), g = prm.grad(), m = prm.expAvg(), v = prm.expAvgSq();
    MemorySegment sp = segment(p), sg = segment(g), sm = segment(m), sv = segment(v);
    float decay = u.decoupled() ? (float) (1 - u.lr() * u.weightDecay()) : 1f;
    float l2 = u.decoupled() ? 0f : (float) u.weightDecay();
    float b1 = (float) u.beta1(), b2 = (float) u.beta2(), c1 = (float) (1 - u.beta1()), c2 = (float) (1 - u.beta2());
    float stepSize = (float) (u.lr() / u.biasCorrection1()), rootBc2 = (float) (1 / Math.sqrt(u.biasCorrection2())), eps = (float) u.eps();
    long n = p.numel();
    float[] k = {decay, l2, b1, b2, c1, c2, stepSize, rootBc2, eps};
    long full = n / L;   // whole vectors; the last n mod L elements run as scalars (no masked loads, whose bounds checks are slow)
    par.forRange(full + (n % L == 0 ? 0 : 1), 4096, (c0, c1x) -> {
      for (long blk = c0; blk < c1x; blk++) {
        long i = blk * L;
        if (blk == full) {
          for (long e = i; e < n; e++) scalar(sp, p.offset() + e, sg, g.offset() + e, sm, m.offset() + e, sv, v.offset() + e, k);
          continue;
        }
        long bp = (p.offset() + i) * 4, bg = (g.offset() + i) * 4, bm = (m.offset() + i) * 4, bv = (v.offset() + i) * 4;
        FloatVector pv = FloatVector.fromMemorySegment(S, sp, bp, NATIVE);
        FloatVector gv = FloatVector.fromMemorySegment(S, sg, bg, NATIVE);
        if (l2 != 0f) gv = pv.mul(l2).add(gv);
        FloatVector mv = FloatVector.fromMemorySegment(S, sm, bm, NATIVE).mul(b1).add(gv.mul(c1));
        FloatVector vv = FloatVector.fromMemorySegment(S, sv, bv, NATIVE).mul(b2).add(gv.mul(gv).mul(c2));
        FloatVector denom = vv.sqrt().mul(rootBc2).add(eps);
        pv = pv.mul(decay).sub(mv.div(denom).mul(stepSize));
        mv.intoMemorySegment(sm, bm, NATIVE);
        vv.intoMemorySegment(sv, bv, NATIVE);
        pv.intoMemorySegment(sp, bp, NATIVE);
      }
    });
  }

  /**
   * One element of the step, the vector lanes' operations in the same order on floats (no fused multiply-adds on
   * either side), so a tail element gets exactly the value a vector lane would. k = decay, l2, b1, b2, 1 − b1,
   * 1 − b2, step size, 1/sqrt(bias correction 2), eps.
   */
  private static void scalar(MemorySegment sp, long ip, MemorySegment sg, long ig, MemorySegment sm, long im, MemorySegment sv, long iv, float[] k) {
    float p = sp.getAtIndex(F, ip), g = sg.getAtIndex(F, ig);
    if (k[1] != 0f) g = p * k[1] + g;
    float m = sm.getAtIndex(F, im) * k[2] + g * k[4];
    float v = sv.getAtIndex(F, iv) * k[3] + g * g * k[5];
    float denom = (float) Math.sqrt(v) * k[7] + k[8];
    sm.setAtIndex(F, im, m);
    sv.setAtIndex(F, iv, v);
    sp.setAtIndex(F, ip, p * k[0] - m / denom * k[6]);
  }
}
