package io.colossal4j.backend.cuda;

import static io.colossal4j.backend.cuda.CudaTestSupport.gpu;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.backend.BinaryOp;
import io.colossal4j.backend.cuda.ffi.CudaUnavailableException;
import io.colossal4j.backend.cuda.ffi.LibraryLocator;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Device;
import io.colossal4j.tensor.MemoryCategory;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/** The CUDA backend's contract: failing loudly without CUDA, host transfers, allocator accounting, bad input. */
class CudaBackendTest {
  /** Runs on CPU-only machines (CI): opening cuda:0 names the driver library and every place looked. */
  @Test void withoutADriverOpeningCudaIsAClearError() {
    LibraryLocator loc = new LibraryLocator(System.getenv());
    Assumptions.assumeTrue(loc.find(LibraryLocator.DRIVER) == null, "a CUDA driver is installed here; the no-driver path is not testable");
    // an empty environment: nothing but the standard folders and the system loader to search
    CudaUnavailableException e = assertThrows(CudaUnavailableException.class,
        () -> CudaBackend.open(Device.cuda(0), CudaOptions.defaults(Map.of())));
    String m = e.getMessage();
    assertTrue(m.startsWith("CUDA driver library not found (looked for libcuda.so.1, libcuda.so)"), m);
    assertTrue(m.contains("C4J_LIBCUDA: not set") && m.contains("standard path: /usr/local/nvidia/lib64"), m);
    assertThrows(TensorException.class, () -> CudaBackend.open(Device.cpu(), CudaOptions.defaults(Map.of())));
  }

  @Test void hostRoundTripsThroughContiguousAndStridedTensors() {
    CudaBackend g = gpu();
    float[] data = new float[24];
    for (int i = 0; i < data.length; i++) data[i] = i * 0.5f - 3;
    Tensor t = Tensor.of(data, Shape.of(4, 6), g);
    assertArrayEquals(data, t.toFloatArray());
    Tensor tt = t.view(Shape.of(6, 4), new long[] {1, 6}, 0);
    float[] want = new float[24];
    for (int i = 0; i < 6; i++) for (int j = 0; j < 4; j++) want[i * 4 + j] = data[j * 6 + i];
    assertArrayEquals(want, tt.toFloatArray(), "non-contiguous copy to host");
    Tensor dst = Tensor.zeros(Shape.of(4, 6), DType.F32, g);
    Tensor dt = dst.view(Shape.of(6, 4), new long[] {1, 6}, 0);
    g.copyFromHost(java.lang.foreign.MemorySegment.ofArray(want), dt);
    assertArrayEquals(data, dst.toFloatArray(), "non-contiguous copy from host (heap source)");
    assertEquals(6.0, Tensor.of(new long[] {6}, Shape.of(1), DType.I64, g).item());
  }

  @Test void allocationsAreChargedToTheirCategoryAndReused() {
    CudaBackend g = gpu();
    g.synchronize();
    // the backend is shared by the suite's classes: a cached block a little larger than 4 MiB, left by an earlier
    // class (an optimizer's state), would serve the request whole and be charged at its own size
    g.emptyCache();
    long before = g.memoryStats().current().get(MemoryCategory.OPTIMIZER_STATE);
    Tensor a = Tensor.empty(Shape.of(1 << 20), DType.F32, g, MemoryCategory.OPTIMIZER_STATE);
    assertEquals(before + (4L << 20), g.memoryStats().current().get(MemoryCategory.OPTIMIZER_STATE));
    long ptr = ((CudaStorage) a.storage()).pointer();
    a.storage().release();
    assertEquals(before, g.memoryStats().current().get(MemoryCategory.OPTIMIZER_STATE));
    Tensor b = Tensor.empty(Shape.of(1 << 20), DType.F32, g, MemoryCategory.OPTIMIZER_STATE);
    assertEquals(ptr, ((CudaStorage) b.storage()).pointer(), "the freed block is reused");
    b.storage().release();
    TensorException e = assertThrows(TensorException.class, () -> g.kernels().fill(b, 1));
    assertTrue(e.getMessage().contains("was released"), e.getMessage());
  }

  @Test void aCappedBackendRunsOutOfMemoryWithAReport(@org.junit.jupiter.api.io.TempDir Path tmp) throws Exception {
    gpu(); // skips without a GPU
    CudaOptions opts = CudaOptions.defaults(System.getenv()).withMemoryCap(CudaOptions.parseBytes("256MiB"));
    String cache = System.getProperty("c4j.kernelCache");
    if (cache != null) opts = opts.withKernelCacheDir(Path.of(cache));
    try (CudaBackend small = CudaBackend.open(Device.cuda(0), opts)) {
      Tensor p = Tensor.empty(Shape.of(40 << 20), DType.F32, small, MemoryCategory.PARAMETER);
      TensorException e = assertThrows(TensorException.class, () -> Tensor.empty(Shape.of(30 << 20), DType.F32, small, MemoryCategory.ACTIVATION));
      assertTrue(e.getMessage().contains("cap of 256.0 MiB") && e.getMessage().contains("parameter") && e.getMessage().contains("What would help"), e.getMessage());
      p.storage().release();
    }
    assertTrue(Files.isDirectory(tmp));
  }

  @Test void operandsFromAnotherBackendAreRejectedBeforeAnyLaunch() {
    CudaBackend g = gpu();
    Tensor cpu = Tensor.zeros(Shape.of(3), DType.F32, CudaTestSupport.CPU);
    Tensor dev = Tensor.zeros(Shape.of(3), DType.F32, g);
    TensorException e = assertThrows(TensorException.class, () -> g.kernels().binary(BinaryOp.ADD, cpu, dev, dev));
    assertTrue(e.getMessage().contains("expected a tensor on cuda:0"), e.getMessage());
    assertThrows(TensorException.class, () -> g.kernels().binary(BinaryOp.ADD, dev, dev, Tensor.zeros(Shape.of(4), DType.F32, g)));
  }
}
