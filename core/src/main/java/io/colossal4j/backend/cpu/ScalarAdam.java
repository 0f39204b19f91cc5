package io.colossal4j.backend.cpu;

import static io.colossal4j.backend.cpu.CpuBackend.segment;

import io.colossal4j.backend.AdamUpdate;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;
import java.lang.foreign.MemorySegment;
import java.util.List;

/** The reference fused Adam/AdamW step: {@link AdamUpdate}'s rule element by element, in double, one rounding per stored value. */
final class ScalarAdam {
  private ScalarAdam() {}

  static void step(List<AdamUpdate.Param> params, AdamUpdate u) {
    double bc1 = u.biasCorrection1(), bc2 = u.biasCorrection2();
    for (AdamUpdate.Param prm : params) {
      Tensor p = prm.param(), g = prm.grad(), m = prm.expAvg(), v = prm.expAvgSq();
      for (Tensor t : new Tensor[] {p, g, m, v})
        if (!t.isContiguous()) throw new TensorException("adamStep: tensors must be contiguous, got " + t.shape() + " strides " + java.util.Arrays.toString(t.strides()));
      MemorySegment sp = segment(p), sg = segment(g), sm = segment(m), sv = segment(v);
      for (long i = 0; i < p.numel(); i++) {
        double pi = ScalarKernels.get(sp, p, p.offset() + i), gi = ScalarKernels.get(sg, g, g.offset() + i);
        if (u.decoupled()) pi *= 1 - u.lr() * u.weightDecay();
        else gi += u.weightDecay() * pi;
        double mi = u.beta1() * ScalarKernels.get(sm, m, m.offset() + i) + (1 - u.beta1()) * gi;
        double vi = u.beta2() * ScalarKernels.get(sv, v, v.offset() + i) + (1 - u.beta2()) * gi * gi;
        pi -= u.lr() * (mi / bc1) / (Math.sqrt(vi / bc2) + u.eps());
        ScalarKernels.set(sm, m, m.offset() + i, mi);
        ScalarKernels.set(sv, v, v.offset() + i, vi);
        ScalarKernels.set(sp, p, p.offset() + i, pi);
      }
    }
  }
}
