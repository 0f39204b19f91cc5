package io.colossal4j.backend.cpu.simd;

import static io.colossal4j.backend.cpu.simd.VMath.S;

import io.colossal4j.backend.BinaryOp;
import io.colossal4j.backend.UnaryOp;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;

/**
 * One unit-stride row loop per transcendental op (and per activation derivative). Each loop calls exactly one
 * vector function, so the JIT inlines it and keeps every vector in registers; a single loop dispatching
 * over all ops grew past the JIT's inlining limits, which boxes the vectors (measured 10-40x slower).
 * For the same reason the partial last vector of a row is not a masked second copy of the loop body (which
 * doubled the IR and crossed the JIT's node budget): it is copied into an L-wide scratch array and run
 * through the same full-vector loop. Rows of {@code n} elements at element offsets.
 */
final class ActivationRows {
  private ActivationRows() {}

  private static final ByteOrder NATIVE = ByteOrder.nativeOrder();
  private static final int L = S.length();
  private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;
  private static final float INV_SQRT_2PI = 0.3989422804014327f;

  static boolean hasRow(UnaryOp op) {
    return switch (op) {
      case EXP, TANH, ERF, SIGMOID, GELU, GELU_TANH, SILU -> true;
      default -> false;
    };
  }

  static boolean hasRow(BinaryOp op) {
    return switch (op) {
      case GELU_BACKWARD, GELU_TANH_BACKWARD, SILU_BACKWARD, SIGMOID_BACKWARD, TANH_BACKWARD -> true;
      default -> false;
    };
  }

  /** out[io..io+n) = op(x[ix..ix+n)); the last n mod L elements go through an L-wide scratch copy. */
  static void unary(UnaryOp op, MemorySegment x, long ix, MemorySegment o, long io, int n) {
    if (op == UnaryOp.TANH) { tanhFamily(x, ix, null, 0, o, io, n); return; }
    int full = n - n % L;
    if (full > 0) fullUnary(op, x, ix, o, io, full);
    if (full == n) return;
    float[] t = new float[L];
    MemorySegment.copy(x, F, (ix + full) * 4, t, 0, n - full);
    MemorySegment ts = MemorySegment.ofArray(t);
    fullUnary(op, ts, 0, ts, 0, L);
    MemorySegment.copy(t, 0, o, F, (io + full) * 4, n - full);
  }

  static void binary(BinaryOp op, MemorySegment a, long ia, MemorySegment b, long ib, MemorySegment o, long io, int n) {
    if (op == BinaryOp.TANH_BACKWARD) { tanhFamily(a, ia, b, ib, o, io, n); return; }
    int full = n - n % L;
    if (full > 0) fullBinary(op, a, ia, b, ib, o, io, full);
    if (full == n) return;
    float[] ta = new float[L], tb = new float[L];
    MemorySegment.copy(a, F, (ia + full) * 4, ta, 0, n - full);
    MemorySegment.copy(b, F, (ib + full) * 4, tb, 0, n - full);
    MemorySegment sa = MemorySegment.ofArray(ta);
    fullBinary(op, sa, 0, MemorySegment.ofArray(tb), 0, sa, 0, L);
    MemorySegment.copy(ta, 0, o, F, (io + full) * 4, n - full);
  }

  private static final int CHUNK = 512;

  /** tanh(x), or with g non-null (1 − tanh²(x))·g, through {@link ChunkPasses}. */
  private static void tanhFamily(MemorySegment x, long ix, MemorySegment g, long ig, MemorySegment o, long io, int n) {
    float[] xs = new float[CHUNK], e = new float[CHUNK], gs = g == null ? null : new float[CHUNK];
    for (int c = 0; c < n; c += CHUNK) {
      int len = Math.min(CHUNK, n - c), lv = (len + L - 1) / L * L;
      MemorySegment.copy(x, F, (ix + c) * 4, xs, 0, len);
      java.util.Arrays.fill(xs, len, lv, 0f);
      ChunkPasses.expTwiceAbs(xs, e, lv);
      ChunkPasses.tanhCombine(xs, e, e, lv);
      if (g != null) {
        MemorySegment.copy(g, F, (ig + c) * 4, gs, 0, len);
        ChunkPasses.tanhGradCombine(e, gs, e, lv);
      }
      MemorySegment.copy(e, 0, o, F, (io + c) * 4, len);
    }
  }

  /** n is a multiple of L. */
  private static void fullUnary(UnaryOp op, MemorySegment x, long ix, MemorySegment o, long io, int n) {
    switch (op) {
      case EXP -> exp(x, ix, o, io, n);
      case ERF -> erf(x, ix, o, io, n);
      case GELU -> gelu(x, ix, o, io, n);
      case SIGMOID -> sigmoid(x, ix, o, io, n);
      case GELU_TANH -> geluTanh(x, ix, o, io, n);
      case SILU -> silu(x, ix, o, io, n);
      default -> throw new IllegalStateException(op + " has no activation row");
    }
  }

  private static void fullBinary(BinaryOp op, MemorySegment a, long ia, MemorySegment b, long ib, MemorySegment o, long io, int n) {
    switch (op) {
      case GELU_BACKWARD -> geluBackward(a, ia, b, ib, o, io, n);
      case GELU_TANH_BACKWARD -> geluTanhBackward(a, ia, b, ib, o, io, n);
      case SILU_BACKWARD -> siluBackward(a, ia, b, ib, o, io, n);
      case SIGMOID_BACKWARD -> sigmoidBackward(a, ia, b, ib, o, io, n);
      default -> throw new IllegalStateException(op + " has no activation row");
    }
  }

  private static void exp(MemorySegment x, long ix, MemorySegment o, long io, int n) {
    for (int j = 0; j < n; j += L) {
      FloatVector v = FloatVector.fromMemorySegment(S, x, (ix + j) * 4, NATIVE);
      VMath.exp(v).intoMemorySegment(o, (io + j) * 4, NATIVE);
    }
  }



  /** erf in two passes per CHUNK elements: 1 − erfc(|x|) into a heap chunk, then the blend with x·P(x²). */
  private static void erf(MemorySegment x, long ix, MemorySegment o, long io, int n) {
    float[] big = new float[CHUNK];
    for (int c = 0; c < n; c += CHUNK) {
      int len = Math.min(CHUNK, n - c);
      erfTailPass(x, ix + c, big, len);
      erfPass(x, ix + c, big, o, io + c, len);
    }
  }

  private static void erfTailPass(MemorySegment x, long ix, float[] big, int n) {
    for (int j = 0; j < n; j += L) VMath.oneMinusErfc(FloatVector.fromMemorySegment(S, x, (ix + j) * 4, NATIVE).abs()).intoArray(big, j);
  }

  private static void erfPass(MemorySegment x, long ix, float[] big, MemorySegment o, long io, int n) {
    for (int j = 0; j < n; j += L) {
      FloatVector v = FloatVector.fromMemorySegment(S, x, (ix + j) * 4, NATIVE);
      VMath.erf(v, FloatVector.fromArray(S, big, j)).intoMemorySegment(o, (io + j) * 4, NATIVE);
    }
  }

  /** x·Φ(x) in one pass: {@link VMath#gelu} has a single branch, small enough to inline whole. */
  private static void gelu(MemorySegment x, long ix, MemorySegment o, long io, int n) {
    for (int j = 0; j < n; j += L) {
      FloatVector v = FloatVector.fromMemorySegment(S, x, (ix + j) * 4, NATIVE);
      VMath.gelu(v).intoMemorySegment(o, (io + j) * 4, NATIVE);
    }
  }

  private static void sigmoid(MemorySegment x, long ix, MemorySegment o, long io, int n) {
    for (int j = 0; j < n; j += L) {
      FloatVector v = FloatVector.fromMemorySegment(S, x, (ix + j) * 4, NATIVE);
      VOps.sigmoid(v).intoMemorySegment(o, (io + j) * 4, NATIVE);
    }
  }


  private static void geluTanh(MemorySegment x, long ix, MemorySegment o, long io, int n) {
    for (int j = 0; j < n; j += L) {
      FloatVector v = FloatVector.fromMemorySegment(S, x, (ix + j) * 4, NATIVE);
      VOps.geluTanh(v).intoMemorySegment(o, (io + j) * 4, NATIVE);
    }
  }

  private static void silu(MemorySegment x, long ix, MemorySegment o, long io, int n) {
    for (int j = 0; j < n; j += L) {
      FloatVector v = FloatVector.fromMemorySegment(S, x, (ix + j) * 4, NATIVE);
      v.mul(VOps.sigmoid(v)).intoMemorySegment(o, (io + j) * 4, NATIVE);
    }
  }


  private static void geluTanhBackward(MemorySegment xa, long ia, MemorySegment xb, long ib, MemorySegment o, long io, int n) {
    for (int j = 0; j < n; j += L) {
      FloatVector a = FloatVector.fromMemorySegment(S, xa, (ia + j) * 4, NATIVE), b = FloatVector.fromMemorySegment(S, xb, (ib + j) * 4, NATIVE);
      VOps.geluTanhGrad(a).mul(b).intoMemorySegment(o, (io + j) * 4, NATIVE);
    }
  }

  /** gy·(Φ(x) + x·φ(x)), φ(x) = e^{−x²/2}/√(2π) from the same exponential as Φ. */
  private static void geluBackward(MemorySegment xa, long ia, MemorySegment xb, long ib, MemorySegment o, long io, int n) {
    for (int j = 0; j < n; j += L) {
      FloatVector a = FloatVector.fromMemorySegment(S, xa, (ia + j) * 4, NATIVE), b = FloatVector.fromMemorySegment(S, xb, (ib + j) * 4, NATIVE);
      FloatVector e = VMath.expNegSquare(a, 0.5f);
      a.fma(e.mul(INV_SQRT_2PI), VMath.normalCdf(a, e)).mul(b).intoMemorySegment(o, (io + j) * 4, NATIVE);
    }
  }

  private static void siluBackward(MemorySegment xa, long ia, MemorySegment xb, long ib, MemorySegment o, long io, int n) {
    for (int j = 0; j < n; j += L) {
      FloatVector a = FloatVector.fromMemorySegment(S, xa, (ia + j) * 4, NATIVE), b = FloatVector.fromMemorySegment(S, xb, (ib + j) * 4, NATIVE);
      VOps.siluGrad(a).mul(b).intoMemorySegment(o, (io + j) * 4, NATIVE);
    }
  }

  private static void sigmoidBackward(MemorySegment xa, long ia, MemorySegment xb, long ib, MemorySegment o, long io, int n) {
    for (int j = 0; j < n; j += L) {
      FloatVector a = FloatVector.fromMemorySegment(S, xa, (ia + j) * 4, NATIVE), b = FloatVector.fromMemorySegment(S, xb, (ib + j) * 4, NATIVE);
      VOps.sigmoidGrad(a).mul(b).intoMemorySegment(o, (io + j) * 4, NATIVE);
    }
  }

}
