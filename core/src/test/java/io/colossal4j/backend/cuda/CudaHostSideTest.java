package io.colossal4j.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.backend.BinaryOp;
import io.colossal4j.backend.ReduceOp;
import io.colossal4j.backend.UnaryOp;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.TensorException;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** Host-side pieces of the CUDA backend that need no GPU: geometry, option parsing, kernel-source consistency. */
class CudaHostSideTest {
  @Test void contiguousOperandsCoalesceToOneDim() {
    CudaGeometry.Space s = CudaGeometry.coalesce(Shape.of(2, 3, 4), new long[][] {{12, 4, 1}, {12, 4, 1}}, new long[] {5, 0});
    assertArrayEquals(new int[] {24}, s.sizes());
    assertArrayEquals(new long[] {1}, s.strides()[0]);
    assertEquals(5, s.offsets()[0]);
  }

  @Test void transposeAndBroadcastKeepTheDimsTheyNeed() {
    // out contiguous [4, 6]; a is a transposed view (strides 1, 4); b broadcasts a row (stride 0, 1)
    CudaGeometry.Space s = CudaGeometry.coalesce(Shape.of(4, 6), new long[][] {{1, 4}, {0, 1}, {6, 1}}, new long[] {0, 0, 0});
    assertArrayEquals(new int[] {4, 6}, s.sizes());
    // size-1 dims vanish and a broadcast run merges with its neighbour
    // (operand 1 has padded rows of 40, so the outer dim cannot merge)
    CudaGeometry.Space t = CudaGeometry.coalesce(Shape.of(3, 1, 5, 7), new long[][] {{0, 9, 0, 0}, {40, 40, 7, 1}}, new long[] {0, 0});
    assertArrayEquals(new int[] {3, 35}, t.sizes());
    assertArrayEquals(new long[] {0, 0}, t.strides()[0]);
    assertArrayEquals(new long[] {40, 1}, t.strides()[1]);
  }

  @Test void moreThanEightUnmergeableDimsIsAClearError() {
    int[] dims = new int[9];
    long[] st = new long[9];
    long stride = 1;
    for (int d = 8; d >= 0; d--) { dims[d] = 2; st[d] = stride; stride *= 3; }
    CudaGeometry.Space s = CudaGeometry.coalesce(Shape.of(dims), new long[][] {st}, new long[] {0});
    TensorException e = assertThrows(TensorException.class, () -> CudaGeometry.checkRank(s, "add"));
    assertTrue(e.getMessage().contains("add on CUDA: 9 dims"), e.getMessage());
  }

  @Test void memorySizesParseAsConfigsWriteThem() {
    assertEquals((long) (23.3 * (1L << 30)), CudaOptions.parseBytes("23.3GiB"));
    assertEquals(24_000_000_000L, CudaOptions.parseBytes("24GB"));
    assertEquals(512L << 20, CudaOptions.parseBytes("512 MiB"));
    assertEquals(1L << 30, CudaOptions.parseBytes("1g"));
    assertEquals(1048576, CudaOptions.parseBytes("1048576"));
    TensorException e = assertThrows(TensorException.class, () -> CudaOptions.parseBytes("lots"));
    assertTrue(e.getMessage().contains("'lots'"));
  }

  private static List<String> labels(String source, String function) {
    int start = source.indexOf(function);
    int end = source.indexOf("default:", start);
    Matcher m = Pattern.compile("case (\\d+):.*?// ([A-Z_]+)").matcher(source.substring(start, end));
    List<String> names = new ArrayList<>();
    while (m.find()) {
      assertEquals(names.size(), Integer.parseInt(m.group(1)), "op codes must be consecutive in " + function);
      names.add(m.group(2));
    }
    return names;
  }

  /** The kernels switch on enum ordinals; their labels must list the Java enums in order. */
  @Test void kernelOpCodesMatchTheJavaEnums() {
    String src = CudaModule.source();
    assertEquals(names(UnaryOp.values()), labels(src, "A unary_op(int op"));
    assertEquals(names(BinaryOp.values()), labels(src, "A binary_op(int op"));
    String reduceDoc = src.substring(src.indexOf("Op codes are io.colossal4j.backend.ReduceOp"));
    for (ReduceOp op : ReduceOp.values()) assertTrue(reduceDoc.contains(op.ordinal() + " " + op.name()), op.name());
  }

  private static List<String> names(Enum<?>[] values) {
    List<String> n = new ArrayList<>();
    for (Enum<?> v : values) n.add(v.name());
    return n;
  }

  /** Every kernel the Java side launches is an extern "C" entry point of the source. */
  @Test void everyLaunchedKernelExists() {
    String src = CudaModule.source();
    for (String base : List.of("fill", "convert", "unary", "binary", "binary_scalar", "where", "reduce_rows", "reduce_cols", "softmax",
        "softmax_bwd", "layernorm", "layernorm_bwd", "layernorm_wb_partial", "layernorm_wb_final", "matmul"))
      for (String v : List.of("_f", "_d")) assertTrue(src.contains("extern \"C\" __global__ void " + base + v + "("), base + v);
    assertTrue(src.contains("extern \"C\" __global__ void copy_raw("));
    // the dense kernels, one per mix of bf16 (b) and f32 (f) operands as CudaKernels and CudaNormKernels name
    // them, are made by macros: EW_UN (ew_unary_, ew_binary_scalar_), EW_BIN, SOFTMAX_DENSE, SOFTMAX_BWD_DENSE
    for (String a : List.of("b", "f"))
      for (String o : List.of("b", "f")) {
        assertTrue(src.contains("EW_UN(" + a + o + ","), "ew_unary_" + a + o);
        assertTrue(src.contains("SOFTMAX_DENSE(" + a + o + ","), "softmax_dense_" + a + o);
        for (String b : List.of("b", "f")) {
          assertTrue(src.contains("EW_BIN(" + a + b + o + ","), "ew_binary_" + a + b + o);
          assertTrue(src.contains("SOFTMAX_BWD_DENSE(" + a + b + o + ","), "softmax_bwd_dense_" + a + b + o);
        }
      }
    for (String t : List.of("bf16", "f32")) assertTrue(src.contains("extern \"C\" __global__ void colsum_vec_" + t + "("), "colsum_vec_" + t);
    assertTrue(src.contains("extern \"C\" __global__ void uniform_kernel("));
  }

  @Test void cacheKeyChangesWithSourceAndArchitecture() {
    assertTrue(!CudaModule.sha256("a").equals(CudaModule.sha256("b")));
    assertEquals(List.of("--gpu-architecture=sm_90", "--std=c++17", "-default-device", "-lineinfo"), CudaModule.options(9, 0));
  }

  @Test void blasLayoutsAreRecognised() {
    assertEquals("Mat[rowMajor=true, ld=8]", String.valueOf(CudaMatmul.layoutOf(4, 8, 8, 1)));
    assertEquals("Mat[rowMajor=false, ld=4]", String.valueOf(CudaMatmul.layoutOf(4, 8, 1, 4)));
    assertEquals("Mat[rowMajor=true, ld=16]", String.valueOf(CudaMatmul.layoutOf(4, 8, 16, 1)));
    assertEquals("null", String.valueOf(CudaMatmul.layoutOf(4, 8, 16, 2)), "no unit stride: the generic kernel");
    assertEquals("null", String.valueOf(CudaMatmul.layoutOf(4, 8, 0, 1)), "a broadcast row is not a BLAS matrix");
  }
}
