package io.colossal4j.backend;

import static io.colossal4j.backend.ConformanceSupport.U;
import static io.colossal4j.backend.ConformanceSupport.assertClose;
import static io.colossal4j.backend.ConformanceSupport.exact;
import static io.colossal4j.backend.ConformanceSupport.ulps;

import io.colossal4j.backend.ConformanceSupport.Pair;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import org.junit.jupiter.api.Test;

/**
 * Conformance of the convolution, pooling and indexing kernels (part of {@link KernelConformance}).
 * Convolutions are sums of products, so their bound is the dot-product one, (len + 2)·u·Σ|terms| + 1 ulp,
 * with Σ|terms| obtained by running the reference kernel on the absolute values of the inputs; max pooling
 * and the index kernels move values and must be exact; average pooling divides a short sum (4 ulp).
 */
public abstract class SpatialConformance extends ConformanceBase {
  /** One geometry: N, Cin, H, W, Cout, kH, kW and the spec. */
  private record ConvCase(int n, int cin, int h, int w, int cout, int kh, int kw, Conv2dSpec spec) {}

  private static final ConvCase[] CONV = {
      new ConvCase(2, 6, 9, 9, 4, 3, 3, Conv2dSpec.of(1, 1, 1, 1)),
      new ConvCase(3, 4, 13, 11, 5, 3, 3, new Conv2dSpec(2, 2, 0, 1, 0, 1, 1, 1, 1)),   // TF "same", stride 2
      new ConvCase(1, 6, 12, 10, 6, 3, 3, new Conv2dSpec(1, 1, 2, 2, 2, 2, 2, 2, 2)),   // dilation 2, groups 2
      new ConvCase(2, 8, 7, 9, 8, 5, 5, new Conv2dSpec(1, 2, 2, 2, 1, 3, 1, 1, 8)),     // depthwise, odd stride/pad
      new ConvCase(4, 5, 6, 6, 7, 1, 1, Conv2dSpec.of(1, 0, 1, 1)),                     // 1x1
      new ConvCase(2, 3, 5, 4, 2, 1, 1, Conv2dSpec.of(1, 1, 1, 1)),                     // padding wider than the filter
      new ConvCase(2, 8, 10, 37, 16, 3, 3, Conv2dSpec.of(1, 1, 1, 1)),                  // channels in whole micro-tiles
      new ConvCase(1, 32, 6, 20, 8, 3, 3, Conv2dSpec.of(1, 1, 1, 1)),                   // K = 288 spans two K blocks
  };

  @Test void conv2dForwardAndBothBackwardsMatchReference() {
    for (ConvCase c : CONV) {
      Conv2dSpec s = c.spec();
      int ho = s.outH(c.h(), c.kh()), wo = s.outW(c.w(), c.kw());
      Pair x = random(Shape.of(c.n(), c.cin(), c.h(), c.w()));
      Pair w = random(Shape.of(c.cout(), c.cin() / s.groups(), c.kh(), c.kw()));
      Pair gy = random(Shape.of(c.n(), c.cout(), ho, wo));
      String what = "conv2d " + c;
      int taps = c.kh() * c.kw();
      Pair y = out(gy.shape());
      dut.kernels().conv2d(x.t(), w.t(), s, y.t());
      ref.kernels().conv2d(x.r(), w.r(), s, y.r());
      double[] b = absBound((xa, wa, o) -> ref.kernels().conv2d(xa, wa, s, o), x.r(), w.r(), y.shape());
      assertClose(what + " forward", y.t(), y.r(), dotTolerance(c.cin() / s.groups() * taps, b));
      Pair gx = out(x.shape());
      dut.kernels().conv2dBackwardInput(gy.t(), w.t(), s, gx.t());
      ref.kernels().conv2dBackwardInput(gy.r(), w.r(), s, gx.r());
      b = absBound((ga, wa, o) -> ref.kernels().conv2dBackwardInput(ga, wa, s, o), gy.r(), w.r(), x.shape());
      assertClose(what + " backward input", gx.t(), gx.r(), dotTolerance(c.cout() / s.groups() * taps, b));
      Pair gw = out(w.shape());
      dut.kernels().conv2dBackwardWeight(x.t(), gy.t(), s, gw.t());
      ref.kernels().conv2dBackwardWeight(x.r(), gy.r(), s, gw.r());
      b = absBound((xa, ga, o) -> ref.kernels().conv2dBackwardWeight(xa, ga, s, o), x.r(), gy.r(), w.shape());
      assertClose(what + " backward weight", gw.t(), gw.r(), dotTolerance(c.n() * ho * wo, b));
    }
  }

  @FunctionalInterface private interface Kernel2 { void run(Tensor a, Tensor b, Tensor out); }

  /** Σ|terms| per output element: the reference kernel run on |a| and |b|, in f64. */
  private double[] absBound(Kernel2 kernel, Tensor a, Tensor b, Shape outShape) {
    Tensor o = Tensor.zeros(outShape, DType.F64, ref);
    kernel.run(abs(a), abs(b), o);
    return o.toDoubleArray();
  }

  private Tensor abs(Tensor t) {
    Tensor o = Tensor.empty(t.shape(), DType.F64, ref);
    ref.kernels().unary(UnaryOp.ABS, t, o);
    return o;
  }

  private static ConformanceSupport.Tolerance dotTolerance(int len, double[] absSum) {
    return (i, e) -> (len + 2) * U * absSum[i] + Math.ulp((float) Math.abs(e));
  }

  @Test void poolingForwardAndBackwardMatchReference() {
    Pool2dSpec[] specs = {Pool2dSpec.of(2, 2, 0, false, true), Pool2dSpec.of(3, 2, 1, true, false),
        Pool2dSpec.of(3, 1, 1, false, true), new Pool2dSpec(3, 2, 2, 1, 1, 0, true, true)};
    for (Pool2dSpec s : specs) {
      Pair x = random(Shape.of(2, 3, 11, 8));
      Shape os = Shape.of(2, 3, s.outH(11), s.outW(8));
      Pair y = out(os), idx = ConformanceSupport.poisoned(dut, ref, os, DType.I64);
      dut.kernels().maxPool2d(x.t(), s, y.t(), idx.t());
      ref.kernels().maxPool2d(x.r(), s, y.r(), idx.r());
      assertClose("maxPool2d " + s, y.t(), y.r(), exact());
      assertClose("maxPool2d indices " + s, idx.t(), idx.r(), exact());
      Pair gy = random(os), gx = out(x.shape());
      Pair idxSame = new Pair(Tensor.of(idx.r().toLongArray(), os, DType.I64, dut), idx.r());
      dut.kernels().maxPool2dBackward(gy.t(), idxSame.t(), gx.t());
      ref.kernels().maxPool2dBackward(gy.r(), idx.r(), gx.r());
      assertClose("maxPool2d backward " + s, gx.t(), gx.r(), ulps(4)); // overlapping windows add up to 4 values
      Pair a = out(os);
      dut.kernels().avgPool2d(x.t(), s, a.t());
      ref.kernels().avgPool2d(x.r(), s, a.r());
      assertClose("avgPool2d " + s, a.t(), a.r(), (i, e) -> 4 * Math.ulp(1f));
      Pair ga = out(x.shape());
      dut.kernels().avgPool2dBackward(gy.t(), s, ga.t());
      ref.kernels().avgPool2dBackward(gy.r(), s, ga.r());
      assertClose("avgPool2d backward " + s, ga.t(), ga.r(), (i, e) -> 8 * Math.ulp(1f));
    }
  }

  private Pair index(long[] values, Shape s) {
    return new Pair(Tensor.of(values, s, DType.I64, dut), Tensor.of(values, s, DType.I64, ref));
  }

  @Test void indexSelectGatherAndTheirScatterAddsMatchReference() {
    Pair x = random(Shape.of(7, 5, 6));
    Pair sel = index(new long[] {6, 0, 3, 3, 1}, Shape.of(5));
    Pair o = out(Shape.of(5, 5, 6));
    dut.kernels().indexSelect(x.t(), 0, sel.t(), o.t());
    ref.kernels().indexSelect(x.r(), 0, sel.r(), o.r());
    assertClose("indexSelect dim 0", o.t(), o.r(), exact());
    Pair acc = random(Shape.of(7, 5, 6));
    dut.kernels().indexAdd(acc.t(), 0, sel.t(), o.t());
    ref.kernels().indexAdd(acc.r(), 0, sel.r(), o.r());
    assertClose("indexAdd dim 0 (repeated index 3)", acc.t(), acc.r(), ulps(2));
    long[] gi = new long[7 * 5 * 2];
    for (int i = 0; i < gi.length; i++) gi[i] = (i * 7L + 3) % 6;
    Pair g = index(gi, Shape.of(7, 5, 2));
    Pair go = out(Shape.of(7, 5, 2));
    dut.kernels().gather(x.t(), 2, g.t(), go.t());
    ref.kernels().gather(x.r(), 2, g.r(), go.r());
    assertClose("gather dim 2", go.t(), go.r(), exact());
    Pair sa = random(Shape.of(7, 5, 6));
    dut.kernels().scatterAdd(sa.t(), 2, g.t(), go.t());
    ref.kernels().scatterAdd(sa.r(), 2, g.r(), go.r());
    assertClose("scatterAdd dim 2", sa.t(), sa.r(), ulps(2));
  }
}
