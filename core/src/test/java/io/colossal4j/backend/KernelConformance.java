package io.colossal4j.backend;

import static io.colossal4j.backend.ConformanceSupport.U;
import static io.colossal4j.backend.ConformanceSupport.assertClose;
import static io.colossal4j.backend.ConformanceSupport.exact;
import static io.colossal4j.backend.ConformanceSupport.pick;
import static io.colossal4j.backend.ConformanceSupport.poisoned;
import static io.colossal4j.backend.ConformanceSupport.ulps;

import io.colossal4j.backend.ConformanceSupport.Pair;
import io.colossal4j.ops.Views;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * One conformance suite for every backend: each {@link Kernels} method of the backend under test is run on
 * fresh random inputs (shapes with primes and odd tails; transposed, expanded and narrowed views) and
 * compared with {@link CpuBackend#reference()} on the same inputs. Outputs are filled with NaN first, so an
 * element a kernel forgets to write fails. A backend joins by subclassing and returning itself from
 * {@link #createBackend()} (the CUDA backend will do the same). Convolution, pooling and indexing kernels are
 * checked in {@link SpatialConformance}, which this class extends.
 *
 * <p>Tolerances (u = 2^-24, the f32 unit roundoff; the reference computes in double and rounds once):
 * <ul>
 *   <li>+, −, ×, ÷, comparisons, max/min, copies: exact (an f32 op rounds the same exact value once);</li>
 *   <li>transcendental unary ops: the per-function ulp bounds of the fast math, {@link #UNARY_ULPS};</li>
 *   <li>sums, means and GEMM: k·u·Σ|terms| + 1 ulp (the standard bound for a length-k f32 dot product in any
 *       order), with Σ|terms| computed by the reference on absolute values;</li>
 *   <li>softmax, layer norm and their backwards: 4·n·u relative to the row's scale (two reductions of
 *       length n feed every element).</li>
 * </ul>
 */
public abstract class KernelConformance extends SpatialConformance {
  /** ulp bounds per unary op against the double-precision reference (ops absent here must be exact to 1 ulp). */
  static final Map<UnaryOp, Double> UNARY_ULPS = Map.of(UnaryOp.EXP, 2.0, UnaryOp.TANH, 3.0, UnaryOp.ERF, 4.0,
      UnaryOp.SIGMOID, 4.0, UnaryOp.SILU, 5.0, UnaryOp.GELU, 6.0, UnaryOp.GELU_TANH, 8.0, UnaryOp.RSQRT, 2.0);

  // ------------------------------------------------------------------ elementwise
  @Test void unaryOpsMatchReferenceOnContiguousAndStridedViews() {
    for (UnaryOp op : UnaryOp.values()) {
      boolean positive = op == UnaryOp.LOG || op == UnaryOp.SQRT || op == UnaryOp.RSQRT;
      for (int trial = 0; trial < 3; trial++) {
        Shape s = Shape.of(pick(rnd, 1, 3, 7, 16), pick(rnd, 1, 5, 17, 33, 129));
        Pair x = positive ? random(s, 1e-3, 20) : random(s, -9, 9);
        if (trial == 1) x = x.map(t -> Views.transpose(t, 0, 1));
        if (trial == 2) x = x.map(t -> Views.expand(Views.narrow(t, 0, 0, 1), s.dim(0), s.dim(1)));
        Pair o = out(x.shape());
        dut.kernels().unary(op, x.t(), o.t());
        ref.kernels().unary(op, x.r(), o.r());
        assertClose(op + " trial " + trial, o.t(), o.r(), unaryTolerance(op));
      }
    }
  }

  @Test void fastMathHoldsItsBoundsOnDenseGrids() {
    Shape s = Shape.of(80_001);
    float[] grid = new float[80_001]; // step 2.5e-4 over [-10, 10]
    for (int i = 0; i < grid.length; i++) grid[i] = -10f + 20f * i / (grid.length - 1);
    Pair x = new Pair(Tensor.of(grid, s, dut), Tensor.of(grid, s, ref));
    for (UnaryOp op : new UnaryOp[] {UnaryOp.EXP, UnaryOp.TANH, UnaryOp.ERF, UnaryOp.SIGMOID, UnaryOp.GELU, UnaryOp.SILU}) {
      Pair o = out(s);
      dut.kernels().unary(op, x.t(), o.t());
      ref.kernels().unary(op, x.r(), o.r());
      assertClose(op + " on [-10, 10]", o.t(), o.r(), unaryTolerance(op));
    }
  }

  /**
   * GELU gets an absolute floor of 5e-8 ≥ max |x·Φ(x)| below x = −4√2 (Φ(x) &lt; 1e-8 there), so a backend may
   * flush that tail to 0 (the CPU fast kernels keep ≤ 6 ulp down to −13.22: NormalCdfTest). GELU_TANH = x·σ(2u) with u ~ x³: in the far left tail
   * e^{−2u} turns the f32 rounding of u into a relative error of about |2u|·3u, below 1e-9 absolute there.
   * Everything else is the op's ulp bound.
   */
  private static ConformanceSupport.Tolerance unaryTolerance(UnaryOp op) {
    ConformanceSupport.Tolerance u = ulps(UNARY_ULPS.getOrDefault(op, 1.0));
    return switch (op) {
      case GELU -> (i, e) -> u.at(i, e) + 5e-8;
      case GELU_TANH -> (i, e) -> u.at(i, e) + 1e-9;
      default -> u;
    };
  }

  @Test void binaryOpsMatchReferenceForEveryBroadcastPattern() {
    for (BinaryOp op : BinaryOp.values()) {
      int m = pick(rnd, 1, 3, 13, 64), n = pick(rnd, 1, 7, 19, 48, 131);
      Shape s = Shape.of(m, n);
      Pair a = op == BinaryOp.POW ? random(s, 0.1, 3) : random(s, -4, 4);
      Pair[] bs = {random(s, 0.5, 3), random(Shape.of(1), 0.5, 3), random(Shape.of(n), 0.5, 3), random(Shape.of(m, 1), 0.5, 3),
          random(Shape.of(n, m), 0.5, 3)};
      String[] names = {"contiguous", "scalar", "row vector", "column vector", "transposed"};
      for (int i = 0; i < bs.length; i++) {
        Pair b = i == 4 ? bs[i].map(t -> Views.transpose(t, 0, 1)) : bs[i].map(t -> Views.expand(t, m, n));
        if (op.isComparison() && i == 0) b = a; // equal operands exercise EQ/LE/GE's true branch
        Pair o = out(s);
        dut.kernels().binary(op, a.t(), b.t(), o.t());
        ref.kernels().binary(op, a.r(), b.r(), o.r());
        assertClose(op + " " + names[i], o.t(), o.r(), binaryTolerance(op));
      }
      Pair o = out(s);
      dut.kernels().binaryScalar(op, a.t(), 1.75, o.t());
      ref.kernels().binaryScalar(op, a.r(), 1.75, o.r());
      assertClose(op + " with a scalar", o.t(), o.r(), binaryTolerance(op));
    }
  }

  private static ConformanceSupport.Tolerance binaryTolerance(BinaryOp op) {
    return switch (op) {
      // f'(x)·gy where f' = Φ(x) + x·φ(x) (GELU) or 1 + x(1 − s) (SiLU) cancels for x < 0: 10 ulp of the
      // result plus 8u of the terms' scale (|gy| ≤ 3, |terms| ≤ 2 on these inputs)
      case GELU_BACKWARD, GELU_TANH_BACKWARD, SILU_BACKWARD, SIGMOID_BACKWARD, TANH_BACKWARD -> (i, e) -> ulps(10).at(i, e) + 48 * U;
      case POW -> ulps(2);
      default -> exact();
    };
  }

  @Test void binaryMayWriteIntoItsFirstOperand() {
    Pair a = random(Shape.of(37, 41)), b = random(Shape.of(41));
    Pair bb = b.map(t -> Views.expand(t, 37, 41));
    dut.kernels().binary(BinaryOp.MUL, a.t(), bb.t(), a.t());
    ref.kernels().binary(BinaryOp.MUL, a.r(), bb.r(), a.r());
    assertClose("in-place mul", a.t(), a.r(), exact());
  }

  @Test void copyMatchesForPermutedTransposedExpandedAndNarrowedViews() {
    Pair x = random(Shape.of(3, 29, 5, 34));
    Pair[] views = {x.map(t -> Views.permute(t, 0, 2, 1, 3)), x.map(t -> Views.transpose(t, -1, -2)),
        x.map(t -> Views.permute(t, 3, 1, 0, 2)), x.map(t -> Views.narrow(Views.transpose(t, 1, 3), 1, 3, 30)),
        random(Shape.of(1, 17)).map(t -> Views.expand(t, 40, 17)), random(Shape.of(70_001))};
    for (int i = 0; i < views.length; i++) {
      Pair o = out(views[i].shape());
      dut.kernels().copy(views[i].t(), o.t());
      ref.kernels().copy(views[i].r(), o.r());
      assertClose("copy of view " + i, o.t(), o.r(), exact());
    }
  }

  @Test void fillWhereAndUniformMatch() {
    Pair o = out(Shape.of(13, 29));
    dut.kernels().fill(o.t(), 2.5);
    ref.kernels().fill(o.r(), 2.5);
    assertClose("fill", o.t(), o.r(), exact());
    Pair c = random(Shape.of(13, 29)), a = random(Shape.of(13, 29)), b = random(Shape.of(29)).map(t -> Views.expand(t, 13, 29));
    Pair w = out(Shape.of(13, 29));
    Pair cond = c.map(t -> t); // values in [-1, 1): nonzero almost everywhere; zeros come from the next line
    dut.kernels().binaryScalar(BinaryOp.GT, c.t(), 0, cond.t());
    ref.kernels().binaryScalar(BinaryOp.GT, c.r(), 0, cond.r());
    dut.kernels().where(cond.t(), a.t(), b.t(), w.t());
    ref.kernels().where(cond.r(), a.r(), b.r(), w.r());
    assertClose("where", w.t(), w.r(), exact());
    Pair u = out(Shape.of(1001));
    dut.kernels().uniform(u.t(), 99, 12345);
    ref.kernels().uniform(u.r(), 99, 12345);
    assertClose("uniform", u.t(), u.r(), exact());
  }

  // ------------------------------------------------------------------ reductions
  @Test void reductionsOverTrailingLeadingAndMiddleDims() {
    int[][] dimSets = {{2}, {1, 2}, {0}, {0, 1}, {1}, {0, 2}};
    for (ReduceOp op : ReduceOp.values()) {
      for (int[] dims : dimSets) {
        if ((op == ReduceOp.ARGMAX || op == ReduceOp.ARGMIN) && dims.length > 1) continue;
        Shape s = Shape.of(pick(rnd, 1, 5, 12), pick(rnd, 3, 17, 40), pick(rnd, 1, 31, 100, 257));
        Pair x = op == ReduceOp.PROD ? random(s, 0.9, 1.1) : random(s);
        Shape os = io.colossal4j.ops.OpSupport.keepdimShape(s, dims);
        DType dt = op == ReduceOp.ARGMAX || op == ReduceOp.ARGMIN ? DType.I64 : DType.F32;
        Pair o = poisoned(dut, ref, os, dt);
        dut.kernels().reduce(op, x.t(), dims, o.t());
        ref.kernels().reduce(op, x.r(), dims, o.r());
        long len = 1;
        for (int d : dims) len *= s.dim(d);
        // |x| ≤ 1, so Σ|terms| ≤ len; MEAN divides value and bound alike
        double bound = op == ReduceOp.SUM || op == ReduceOp.PROD ? len * len * U : len * U;
        assertClose(op + " over " + java.util.Arrays.toString(dims) + " of " + s, o.t(), o.r(),
            dt == DType.I64 ? exact() : (i, e) -> bound + Math.ulp((float) Math.abs(e)));
      }
    }
  }

  // ------------------------------------------------------------------ matmul
  @Test void matmulAllTransposeCombinationsBatchedAndAccumulating() {
    int[][] mnk = {{1, 1, 1}, {7, 5, 3}, {33, 65, 17}, {150, 37, 300}, {9, 130, 64}, {64, 64, 64}, {3, 200, 11}};
    for (int[] d : mnk)
      for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) matmulCase(d[0], d[1], d[2], ta == 1, tb == 1, 1, false, false);
    matmulCase(17, 19, 23, false, true, 5, false, false);
    matmulCase(40, 33, 70, true, false, 3, true, false);
    matmulCase(29, 31, 37, false, false, 2, false, true);
    matmulCase(8, 64, 40, true, true, 6, true, true);
  }

  private void matmulCase(int m, int n, int k, boolean ta, boolean tb, int batch, boolean accumulate, boolean outTransposed) {
    Pair a = ta ? random(Shape.of(batch, k, m)).map(t -> Views.transpose(t, 1, 2)) : random(Shape.of(batch, m, k));
    Pair b0 = tb ? random(Shape.of(1, n, k)).map(t -> Views.transpose(t, 1, 2)) : random(Shape.of(1, k, n));
    Pair b = b0.map(t -> Views.expand(t, batch, k, n)); // one B broadcast over the batch: stride 0
    Pair o = outTransposed ? out(Shape.of(batch, n, m)).map(t -> Views.transpose(t, 1, 2)) : out(Shape.of(batch, m, n));
    if (accumulate) { Pair init = random(o.shape()); dut.kernels().copy(init.t(), o.t()); ref.kernels().copy(init.r(), o.r()); }
    dut.kernels().matmul(a.t(), b.t(), o.t(), accumulate);
    ref.kernels().matmul(a.r(), b.r(), o.r(), accumulate);
    Tensor absA = absOf(a.r()), absB = absOf(b.r());
    Tensor bound = Tensor.zeros(o.shape(), DType.F64, ref);
    ref.kernels().matmul(absA, absB, bound, false);
    double[] bd = bound.toDoubleArray();
    String what = "matmul m=%d n=%d k=%d ta=%b tb=%b batch=%d acc=%b outT=%b".formatted(m, n, k, ta, tb, batch, accumulate, outTransposed);
    assertClose(what, o.t(), o.r(), (i, e) -> (k + 2) * U * (bd[i] + (accumulate ? 1 : 0)) + Math.ulp((float) Math.abs(e)));
  }

  private Tensor absOf(Tensor x) {
    Tensor o = Tensor.empty(x.shape(), DType.F64, ref);
    ref.kernels().unary(UnaryOp.ABS, x, o);
    return o;
  }

  // ------------------------------------------------------------------ softmax and layer norm
  @Test void softmaxAndBackwardOverTheLastDimAndOthers() {
    for (boolean log : new boolean[] {false, true})
      for (int trial = 0; trial < 4; trial++) {
        Shape s = Shape.of(pick(rnd, 1, 3, 8), pick(rnd, 5, 31), pick(rnd, 1, 7, 16, 100, 1025));
        Pair x = random(s, -8, 8);
        int dim = trial == 3 ? 1 : 2;
        if (trial == 2) x = x.map(t -> Views.narrow(t, 1, 1, s.dim(1) - 1)); // strided rows
        Pair y = out(x.shape());
        dut.kernels().softmax(x.t(), dim, log, y.t());
        ref.kernels().softmax(x.r(), dim, log, y.r());
        int n = x.shape().dim(dim);
        double tol = 4 * (n + 8) * U * (log ? 16 : 1);
        assertClose("softmax log=" + log + " " + x.shape() + " dim " + dim, y.t(), y.r(), (i, e) -> tol * Math.max(1, Math.abs(e)));
        Pair gy = random(x.shape());
        Pair gx = out(x.shape());
        Pair ySame = fromReference(y.r()); // the same y on both sides isolates the backward
        dut.kernels().softmaxBackward(ySame.t(), gy.t(), dim, log, gx.t());
        ref.kernels().softmaxBackward(y.r(), gy.r(), dim, log, gx.r());
        assertClose("softmax backward log=" + log + " " + x.shape(), gx.t(), gx.r(), (i, e) -> tol * (1 + Math.abs(e)));
      }
  }

  @Test void layerNormAndBackwardWithAndWithoutAffine() {
    for (int trial = 0; trial < 4; trial++) {
      int rows = pick(rnd, 1, 7, 33), n = pick(rnd, 1, 5, 64, 257, 1000);
      Shape s = Shape.of(rows, n);
      Pair x = random(s, -3, 5);
      Pair w = trial % 2 == 0 ? random(Shape.of(n), 0.5, 1.5) : new Pair(null, null);
      Pair b = trial < 2 ? random(Shape.of(n)) : new Pair(null, null);
      Pair y = out(s), mean = out(Shape.of(rows)), rstd = out(Shape.of(rows));
      dut.kernels().layerNorm(x.t(), w.t(), b.t(), 1e-5, y.t(), mean.t(), rstd.t());
      ref.kernels().layerNorm(x.r(), w.r(), b.r(), 1e-5, y.r(), mean.r(), rstd.r());
      double tol = 4 * (n + 8) * U * 8; // x̂ is bounded by sqrt(n); values ~ a few units
      String what = "layerNorm " + s + " affine=" + (w.t() != null) + "/" + (b.t() != null);
      assertClose(what + " y", y.t(), y.r(), (i, e) -> tol * (1 + Math.abs(e)));
      assertClose(what + " mean", mean.t(), mean.r(), (i, e) -> tol);
      assertClose(what + " rstd", rstd.t(), rstd.r(), (i, e) -> tol * Math.abs(e));
      Pair gy = random(s);
      Pair gx = out(s), gw = out(Shape.of(n)), gb = out(Shape.of(n));
      Pair meanSame = fromReference(mean.r()), rstdSame = fromReference(rstd.r()); // isolate the backward
      dut.kernels().layerNormBackward(gy.t(), x.t(), w.t(), meanSame.t(), rstdSame.t(), gx.t(), gw.t(), gb.t());
      ref.kernels().layerNormBackward(gy.r(), x.r(), w.r(), mean.r(), rstd.r(), gx.r(), gw.r(), gb.r());
      assertClose(what + " gx", gx.t(), gx.r(), (i, e) -> tol * 4 * (1 + Math.abs(e)));
      double tolRows = 4 * (rows + n + 8) * U * 8;
      assertClose(what + " gw", gw.t(), gw.r(), (i, e) -> tolRows * rows);
      assertClose(what + " gb", gb.t(), gb.r(), (i, e) -> tolRows * rows);
    }
  }
}
