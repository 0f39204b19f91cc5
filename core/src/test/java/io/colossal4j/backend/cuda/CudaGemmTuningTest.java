package io.colossal4j.backend.cuda;

import static io.colossal4j.backend.cuda.CudaTestSupport.CPU;
import static io.colossal4j.backend.cuda.CudaTestSupport.gpu;
import static io.colossal4j.backend.cuda.CudaTestSupport.nearScaled;
import static io.colossal4j.backend.cuda.CudaTestSupport.outputs;
import static io.colossal4j.backend.cuda.CudaTestSupport.random;
import static io.colossal4j.backend.cuda.CudaTestSupport.toGpu;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.ops.Views;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The GEMM tuner's candidates: every algorithm cuBLASLt's heuristic offers for a linear layer's weight gradient
 * (gw[out, in] = gᵀ[out, N]·x[N, in], N = 8192 tokens: a long reduction, the shape the tuner most often re-ranks)
 * runs alone into a NaN-filled output and must match sums in double, so whichever the tuner keeps is right; and the
 * tuner keeps only a candidate it was allowed to time. Tolerances: the reference sums in another order, so an f32
 * result differs by about √N·2⁻²⁴·Σ|g·x| (terms of order 1, their sum about √N): 1e-5 of the largest element; a
 * bf16 result adds one rounding (2⁻⁸ relative), 2⁻⁷ of the largest element. A missing slice of K (an eighth of
 * it) is off by far more.
 */
class CudaGemmTuningTest {
  private final Random rnd = new Random(31);

  private static CudaMatmul gemms() { return ((CudaKernels) gpu().kernels()).gemms(); }

  @AfterEach void allowEveryCandidate() { gemms().acceptCandidates(name -> true); }

  @Test void everyCandidateMatchesTheReference() {
    for (DType t : new DType[] {DType.BF16, DType.F32}) {
      int ran = 0;
      for (int i = 0; i < 8; i++) {
        String name = "heuristic#" + i;
        gemms().acceptCandidates(name::equals);
        String kept = weightGradient(t, 8192, 128, 384);
        if (i == 0 || kept.equals(name)) ran++;   // past the heuristic's count, the plan falls back to its first
        else assertEquals("heuristic#0", kept, t + ": only " + name + " was allowed");
      }
      assertTrue(ran >= 1, t + ": no candidate ran");
    }
  }

  @Test void tunedChoiceMatchesTheReference() {
    for (DType t : new DType[] {DType.BF16, DType.F32}) assertTrue(weightGradient(t, 8192, 128, 384).startsWith("heuristic#"));
  }

  /** gᵀ·x on the GPU (a transposed view, as linear's backward forms it) against sums in double; returns the kept candidate. */
  private String weightGradient(DType t, int tokens, int out, int in) {
    Tensor g = random(rnd, Shape.of(tokens, out), t, -1, 1), x = random(rnd, Shape.of(tokens, in), t, -1, 1);
    double[] gv = g.toDoubleArray(), xv = x.toDoubleArray(), ref = new double[out * in];
    for (int r = 0; r < tokens; r++)
      for (int o = 0; o < out; o++) {
        double go = gv[r * out + o];
        for (int i = 0; i < in; i++) ref[o * in + i] += go * xv[r * in + i];
      }
    Tensor[] o = outputs(Shape.of(out, in), t);
    Tensor gg = toGpu(g), xg = toGpu(x);
    gpu().kernels().matmul(Views.transpose(gg, 0, 1), xg, o[1], false);
    gpu().synchronize();
    String what = t + " " + out + "x" + in + " over " + tokens + " tokens";
    nearScaled(what, Tensor.of(ref, Shape.of(out, in), DType.F64, CPU), o[1], t == DType.F32 ? 1e-5 : 1.0 / 128);
    String kept = null;
    for (String d : gemms().plannedProblems()) if (d.contains("x" + tokens)) kept = gemms().chosen(d);
    assertNotNull(kept, what + ": no plan was made");
    for (Tensor z : new Tensor[] {gg, xg, o[1]}) z.storage().release();
    return kept;
  }
}
