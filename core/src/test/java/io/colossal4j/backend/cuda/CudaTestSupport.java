package io.colossal4j.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import io.colossal4j.backend.Backend;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.backend.cuda.ffi.CudaUnavailableException;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Device;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Assumptions;

/**
 * Shared by the GPU tests: one CUDA backend per JVM (opened on first use), and twins of random tensors on
 * the scalar CPU reference and on the GPU. Without a usable GPU every GPU test is skipped through a JUnit
 * assumption whose message says why (the first lines of the CudaUnavailableException).
 */
final class CudaTestSupport {
  private CudaTestSupport() {}

  static final Backend CPU = CpuBackend.reference();
  private static CudaBackend cuda;
  private static String unavailable;

  /** The GPU backend, or a skipped test saying why there is none. */
  static synchronized CudaBackend gpu() {
    if (cuda == null && unavailable == null) {
      try {
        // tests are a launcher of sorts: they pass the process environment to library discovery explicitly
        CudaOptions opts = CudaOptions.defaults(System.getenv());
        String cache = System.getProperty("c4j.kernelCache");
        if (cache != null) opts = opts.withKernelCacheDir(Path.of(cache));
        cuda = CudaBackend.open(Device.cuda(0), opts);
        System.out.println("[cuda] " + cuda.describe());
      } catch (CudaUnavailableException e) {
        String m = e.getMessage();
        unavailable = m.lines().limit(2).reduce((a, b) -> a + " " + b).orElse(m);
      }
    }
    Assumptions.assumeTrue(cuda != null, () -> "no usable CUDA GPU, skipping: " + unavailable);
    return cuda;
  }

  /** Random values in [lo, hi) as a CPU reference tensor of {@code dtype} (values rounded to the dtype). */
  static Tensor random(Random rnd, Shape shape, DType dtype, double lo, double hi) {
    double[] v = new double[Math.toIntExact(shape.numel())];
    for (int i = 0; i < v.length; i++) {
      v[i] = lo + (hi - lo) * rnd.nextDouble();
      if (!dtype.isFloating()) v[i] = Math.floor(v[i]);
    }
    return Tensor.of(v, shape, dtype, CPU);
  }

  /** The same values on the GPU. */
  static Tensor toGpu(Tensor cpu) {
    Tensor g = Tensor.empty(cpu.shape(), cpu.dtype(), gpu());
    g.backend().copyFromHost(hostCopy(cpu), g);
    return g;
  }

  private static java.lang.foreign.MemorySegment hostCopy(Tensor cpu) {
    java.lang.foreign.MemorySegment seg = java.lang.foreign.Arena.ofAuto().allocate(Math.max(1, cpu.numel()) * cpu.dtype().byteSize(), 8);
    cpu.backend().copyToHost(cpu, seg);
    return seg;
  }

  /** A view with the same geometry (shape, strides, offset) on another tensor's storage. */
  static Tensor like(Tensor base, Tensor view) { return base.view(view.shape(), view.strides(), view.offset()); }

  /** An output pair: CPU and GPU tensors of the shape, the GPU one filled with NaN (or a sentinel) so unwritten elements fail. */
  /** Every element of got within relTol × max|ref| of ref (a tolerance relative to the tensor's scale), else a failure naming it. */
  static void nearScaled(String what, Tensor ref, Tensor got, double relTol) {
    double[] r = ref.toDoubleArray(), g = got.toDoubleArray();
    assertEquals(r.length, g.length, what + ": size");
    double scale = 0;
    for (double x : r) scale = Math.max(scale, Math.abs(x));
    for (int i = 0; i < r.length; i++)
      if (!(Math.abs(r[i] - g[i]) <= relTol * scale))
        fail(what + ": element " + i + " expected " + r[i] + " got " + g[i] + " (tolerance " + relTol + " x max|ref| " + scale + ")");
  }

  static Tensor[] outputs(Shape shape, DType dtype) {
    Tensor c = Tensor.empty(shape, dtype, CPU);
    Tensor g = Tensor.empty(shape, dtype, gpu());
    g.backend().kernels().fill(g, poison(dtype));
    return new Tensor[] {c, g};
  }

  static double poison(DType dtype) {
    return switch (dtype) {
      case F32, F64, BF16, F16 -> Double.NaN;
      case I32, I64 -> -777_777;
      case BOOL -> 1;
    };
  }

  /**
   * Elementwise |gpu - ref| <= atol + rtol * |ref|; NaN must match NaN, infinities must match exactly.
   * The message names the first offending index and both values.
   */
  static void assertClose(String what, Tensor ref, Tensor got, double rtol, double atol) {
    assertEquals(ref.shape(), got.shape(), what + ": shape");
    double[] r = ref.toDoubleArray(), g = got.toDoubleArray();
    for (int i = 0; i < r.length; i++) {
      boolean ok = Double.isNaN(r[i]) ? Double.isNaN(g[i])
          : Double.isInfinite(r[i]) ? r[i] == g[i]
          : Math.abs(g[i] - r[i]) <= atol + rtol * Math.abs(r[i]);
      if (!ok) fail(what + ": element " + i + " of " + r.length + ": expected " + r[i] + " got " + g[i] + " (rtol " + rtol + ", atol " + atol + ")");
    }
  }

  /** Relative tolerance of one rounding to {@code dtype} plus float arithmetic (see the conformance test's table). */
  static double rtol(DType dtype) {
    return switch (dtype) {
      case BF16 -> 8e-3;   // one bf16 ulp is 2^-8..2^-7 relative: float-vs-double math may round the other way
      case F16 -> 1e-3;    // one f16 ulp is 2^-11..2^-10 relative
      case F32 -> 2e-5;    // float math functions are within a few ulp (2^-23 each) of the double reference
      case F64 -> 1e-12;
      default -> 0;        // integers and bool: exact
    };
  }
}
