package io.colossal4j.backend.cuda;

import static io.colossal4j.backend.cuda.CudaTestSupport.CPU;
import static io.colossal4j.backend.cuda.CudaTestSupport.assertClose;
import static io.colossal4j.backend.cuda.CudaTestSupport.gpu;
import static io.colossal4j.backend.cuda.CudaTestSupport.like;
import static io.colossal4j.backend.cuda.CudaTestSupport.outputs;
import static io.colossal4j.backend.cuda.CudaTestSupport.random;
import static io.colossal4j.backend.cuda.CudaTestSupport.rtol;
import static io.colossal4j.backend.cuda.CudaTestSupport.toGpu;

import io.colossal4j.backend.BinaryOp;
import io.colossal4j.backend.Kernels;
import io.colossal4j.backend.UnaryOp;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.List;
import java.util.Random;
import java.util.function.BiConsumer;
import org.junit.jupiter.api.Test;

/**
 * The elementwise CUDA kernels against the scalar CPU reference (CpuBackend.reference()): fresh random
 * inputs per case, GPU outputs poisoned (NaN, or a sentinel for integers, both 0 and 1 for bool) before
 * each run, contiguous and strided (transposed, offset, broadcast) operands, f32 / bf16 / f16 / f64 / i32 /
 * i64 / bool. Tolerances: {@link CudaTestSupport#rtol} of the output dtype, plus an absolute 1e-6 for
 * values near 0 in f32 (float math of a double reference).
 */
class CudaKernelConformanceTest {
  private final Random rnd = new Random(20260101);

  /** Runs {@code k} on the reference and on the GPU (with the given GPU tensors) and compares {@code outIndex}. */
  private static void check(String what, Tensor[] cpu, Tensor[] cuda, BiConsumer<Kernels, Tensor[]> k, double atol) {
    k.accept(CPU.kernels(), cpu);
    k.accept(gpu().kernels(), cuda);
    Tensor ref = cpu[cpu.length - 1], got = cuda[cuda.length - 1];
    assertClose(what, ref, got, rtol(ref.dtype()), ref.dtype().isFloating() ? atol : 0);
  }

  private static double atol(DType t) { return t == DType.F32 ? 1e-6 : t == DType.F64 ? 1e-12 : t == DType.BF16 ? 1e-2 : 2e-3; }

  @Test void fillAndCopyAcrossDtypesAndStrides() {
    for (DType t : DType.values()) {
      Tensor[] o = outputs(Shape.of(5, 7), t);
      check("fill " + t, new Tensor[] {o[0]}, new Tensor[] {o[1]}, (k, x) -> k.fill(x[0], 3.0), 0);
      // into a strided view (every other column): the untouched columns keep their poison on both sides
      Tensor[] big = outputs(Shape.of(5, 8), t);
      CPU.kernels().fill(big[0], CudaTestSupport.poison(t));
      Tensor vc = big[0].view(Shape.of(5, 4), new long[] {8, 2}, 1), vg = like(big[1], vc);
      check("strided fill " + t, new Tensor[] {big[0], vc}, new Tensor[] {big[1], vg}, (k, x) -> { k.fill(x[1], -2.5); }, 0);
      assertClose("strided fill keeps other elements " + t, big[0], big[1], 0, 0);
    }
    for (DType from : DType.values())
      for (DType to : DType.values()) {
        Tensor src = random(rnd, Shape.of(6, 5), from, -40, 40);
        Tensor srcT = src.view(Shape.of(5, 6), new long[] {1, 5}, 0);
        Tensor[] o = outputs(Shape.of(5, 6), to);
        Tensor gsrc = toGpu(src);
        check("copy " + from + "->" + to, new Tensor[] {srcT, o[0]}, new Tensor[] {like(gsrc, srcT), o[1]}, (k, x) -> k.copy(x[0], x[1]), 0);
      }
    // i64 copies are exact beyond 2^53
    Tensor big = Tensor.of(new long[] {(1L << 62) + 1, -(1L << 60) - 3, 7}, Shape.of(3), DType.I64, CPU);
    Tensor[] o = outputs(Shape.of(3), DType.I64);
    check("i64 exact copy", new Tensor[] {big, o[0]}, new Tensor[] {toGpu(big), o[1]}, (k, x) -> k.copy(x[0], x[1]), 0);
  }

  private static double[] domain(UnaryOp op) {
    return switch (op) {
      case LOG, SQRT, RSQRT, RECIPROCAL -> new double[] {0.05, 4};
      default -> new double[] {-4, 4};
    };
  }

  @Test void everyUnaryOpInEveryFloatType() {
    for (UnaryOp op : UnaryOp.values())
      for (DType t : List.of(DType.F32, DType.BF16, DType.F16, DType.F64)) {
        double[] dom = domain(op);
        Tensor x = random(rnd, Shape.of(9, 33), t, dom[0], dom[1]);
        Tensor[] o = outputs(Shape.of(9, 33), t);
        check(op + " " + t, new Tensor[] {x, o[0]}, new Tensor[] {toGpu(x), o[1]}, (k, a) -> k.unary(op, a[0], a[1]), atol(t));
        // transposed input into a contiguous output
        Tensor xt = x.view(Shape.of(33, 9), new long[] {1, 33}, 0);
        Tensor gx = toGpu(x);
        Tensor[] ot = outputs(Shape.of(33, 9), t);
        check(op + " " + t + " transposed", new Tensor[] {xt, ot[0]}, new Tensor[] {like(gx, xt), ot[1]}, (k, a) -> k.unary(op, a[0], a[1]), atol(t));
      }
  }

  @Test void everyBinaryOpWithBroadcastAndMixedDtypes() {
    for (BinaryOp op : BinaryOp.values()) {
      for (DType t : List.of(DType.F32, DType.BF16, DType.F64, DType.I32)) {
        if (t == DType.I32 && (op == BinaryOp.POW || op.ordinal() >= BinaryOp.RELU_BACKWARD.ordinal() || op == BinaryOp.DIV)) continue;
        double lo = op == BinaryOp.POW ? 0.1 : -3, hi = 3;
        Tensor a = random(rnd, Shape.of(4, 1, 6), t, lo, hi), b = random(rnd, Shape.of(5, 6), t, lo, hi);
        if (op.isComparison()) b = equalsSomeOf(a, b);
        // a broadcast over dim 1, b over dim 0 (stride 0), both expanded to [4, 5, 6]
        Tensor av = a.view(Shape.of(4, 5, 6), new long[] {6, 0, 1}, 0), bv = b.view(Shape.of(4, 5, 6), new long[] {0, 6, 1}, 0);
        Tensor ga = toGpu(a), gb = toGpu(b);
        DType outT = op.isComparison() ? DType.BOOL : t;
        for (double poison : outT == DType.BOOL ? new double[] {0, 1} : new double[] {CudaTestSupport.poison(outT)}) {
          Tensor[] o = outputs(Shape.of(4, 5, 6), outT);
          gpu().kernels().fill(o[1], poison);
          check(op + " " + t, new Tensor[] {av, bv, o[0]}, new Tensor[] {like(ga, av), like(gb, bv), o[1]},
              (k, x) -> k.binary(op, x[0], x[1], x[2]), atol(t));
        }
        Tensor[] s = outputs(Shape.of(4, 1, 6), outT);
        check(op + " scalar " + t, new Tensor[] {a, s[0]}, new Tensor[] {ga, s[1]}, (k, x) -> k.binaryScalar(op, x[0], 1.5, x[1]), atol(t));
      }
    }
    // bf16 + f32 -> f32 (promotion happens in the op; the kernel sees mixed operand dtypes)
    Tensor a = random(rnd, Shape.of(64), DType.BF16, -2, 2), b = random(rnd, Shape.of(64), DType.F32, -2, 2);
    Tensor[] o = outputs(Shape.of(64), DType.F32);
    check("mixed add", new Tensor[] {a, b, o[0]}, new Tensor[] {toGpu(a), toGpu(b), o[1]}, (k, x) -> k.binary(BinaryOp.ADD, x[0], x[1], x[2]), 1e-6);
  }

  /** Copies a's first values into b so comparisons see some equal pairs. */
  private static Tensor equalsSomeOf(Tensor a, Tensor b) {
    double[] av = a.toDoubleArray(), bv = b.toDoubleArray();
    for (int i = 0; i < bv.length; i += 3) bv[i] = av[i % av.length];
    return Tensor.of(bv, b.shape(), b.dtype(), CPU);
  }

  @Test void whereSelectsPerElement() {
    Tensor c = random(rnd, Shape.of(3, 8), DType.BOOL, 0, 2);
    Tensor a = random(rnd, Shape.of(3, 8), DType.F32, -1, 1), b = random(rnd, Shape.of(8), DType.BF16, -1, 1);
    Tensor bv = b.view(Shape.of(3, 8), new long[] {0, 1}, 0);
    Tensor gb = toGpu(b);
    Tensor[] o = outputs(Shape.of(3, 8), DType.F32);
    check("where", new Tensor[] {c, a, bv, o[0]}, new Tensor[] {toGpu(c), toGpu(a), like(gb, bv), o[1]},
        (k, x) -> k.where(x[0], x[1], x[2], x[3]), 1e-7);
  }

  @Test void uniformIsBitIdenticalToTheReference() {
    for (DType t : List.of(DType.F32, DType.BF16, DType.F64)) {
      for (long offset : new long[] {0, 5, 1L << 33}) {
        Tensor[] o = outputs(Shape.of(1001), t);
        check("uniform " + t + " offset " + offset, new Tensor[] {o[0]}, new Tensor[] {o[1]}, (k, x) -> k.uniform(x[0], 0x1234_5678_9abcL, offset), 0);
        assertClose("uniform exact", o[0], o[1], 0, 0);
      }
    }
  }
}
