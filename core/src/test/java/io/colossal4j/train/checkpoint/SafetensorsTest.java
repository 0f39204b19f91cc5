package io.colossal4j.train.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.backend.Backend;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.ops.Views;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.MemoryCategory;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The safetensors format byte for byte, every dtype round-tripped, and bad files rejected before any tensor is read. */
class SafetensorsTest {
  static final Backend CPU = CpuBackend.reference();
  @TempDir Path tmp;

  @Test void layoutIsThePublishedFormat() throws IOException {
    Path f = tmp.resolve("a.safetensors");
    Map<String, Tensor> m = new LinkedHashMap<>();
    m.put("w", Tensor.of(new float[] {1.5f, -2f}, Shape.of(2), CPU));
    m.put("i", Tensor.of(new long[] {7}, Shape.of(1, 1), DType.I64, CPU));
    Safetensors.write(f, m, Map.of("format", "pt"));
    ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(f)).order(ByteOrder.LITTLE_ENDIAN);
    long n = b.getLong(0);
    assertEquals(0, (8 + n) % 8, "data must start 8-byte aligned");
    String header = new String(b.array(), 8, (int) n, StandardCharsets.UTF_8);
    assertEquals("{\"__metadata__\":{\"format\":\"pt\"},"
        + "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
        + "\"i\":{\"dtype\":\"I64\",\"shape\":[1,1],\"data_offsets\":[8,16]}}", header.stripTrailing());
    assertTrue(header.substring(header.stripTrailing().length()).isBlank(), "padding is spaces");
    int data = (int) (8 + n);
    assertEquals(1.5f, b.getFloat(data));
    assertEquals(-2f, b.getFloat(data + 4));
    assertEquals(7L, b.getLong(data + 8));
    assertEquals(data + 16, b.capacity(), "no trailing bytes");
  }

  /** A file laid out as Python's safetensors writes it (built by hand here), read back. */
  @Test void readsAPythonStyleFile() throws IOException {
    String json = "{\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[8,12]},\"a\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,8]}}";
    byte[] h = (json + " ".repeat((8 - json.length() % 8) % 8)).getBytes(StandardCharsets.US_ASCII);
    ByteBuffer b = ByteBuffer.allocate(8 + h.length + 12).order(ByteOrder.LITTLE_ENDIAN);
    b.putLong(h.length).put(h).putDouble(3.25).putShort((short) 0x3f80).putShort((short) 0xc000); // bf16 1.0, -2.0
    Path f = tmp.resolve("py.safetensors");
    Files.write(f, b.array());
    var c = Safetensors.read(f, CPU, MemoryCategory.PARAMETER);
    assertEquals(List.of("b", "a"), List.copyOf(c.tensors().keySet()));
    assertEquals(3.25, c.tensors().get("a").item());
    assertEquals(Shape.scalar(), c.tensors().get("a").shape());
    assertArrayEquals(new double[] {1.0, -2.0}, c.tensors().get("b").toDoubleArray());
    assertEquals(DType.BF16, c.tensors().get("b").dtype());
  }

  /**
   * A golden file written by Python's safetensors 0.8 ({@code scripts/check_formats.py}, which also checks that
   * Python, timm and TensorBoard read what we write): tensor t.&lt;dtype&gt; is [[a, b, c], [d, e, f]] with values
   * i*0.5-1 (floats), i-2 (integers), i%2 (bool) for i = 0..5.
   */
  @Test void readsAFileWrittenByPythonSafetensors() throws Exception {
    Path f = Path.of(SafetensorsTest.class.getResource("/io/colossal4j/golden/python.safetensors").toURI());
    var c = Safetensors.read(f, CPU, MemoryCategory.PARAMETER);
    assertEquals(Map.of("format", "pt", "who", "python"), c.metadata());
    for (DType t : DType.values()) {
      Tensor x = c.tensors().get("t." + t.name().toLowerCase());
      assertEquals(t, x.dtype());
      assertEquals(Shape.of(2, 3), x.shape());
      double[] expected = new double[6];
      for (int i = 0; i < 6; i++) expected[i] = t == DType.BOOL ? i % 2 : t.isFloating() ? i * 0.5 - 1 : i - 2;
      assertArrayEquals(expected, x.toDoubleArray(), t.name());
    }
    assertEquals(3.25, c.tensors().get("scalar").item());
  }

  @Test void everyDtypeRoundTripsExactly() {
    Map<String, Tensor> m = new LinkedHashMap<>();
    double[] vals = {0, 1, -2.5, 3, 0.375, -1};
    for (DType t : DType.values()) {
      double[] v = vals.clone();
      if (t == DType.BOOL) for (int i = 0; i < v.length; i++) v[i] = v[i] != 0 ? 1 : 0;
      if (!t.isFloating()) for (int i = 0; i < v.length; i++) v[i] = Math.rint(v[i]);
      m.put("t." + t.name().toLowerCase(), Tensor.of(v, Shape.of(2, 3), t, CPU));
    }
    // A non-contiguous view (a transpose) is written in row-major order of its own shape.
    Tensor base = Tensor.of(new float[] {1, 2, 3, 4, 5, 6}, Shape.of(2, 3), CPU);
    m.put("transposed", Views.transpose(base, 0, 1));
    m.put("empty", Tensor.zeros(Shape.of(0, 4), DType.F32, CPU));
    Path f = tmp.resolve("all.safetensors");
    Safetensors.write(f, m, Map.of());
    var back = Safetensors.read(f, CPU, MemoryCategory.PARAMETER).tensors();
    assertEquals(m.keySet(), back.keySet());
    for (var e : m.entrySet()) {
      assertEquals(e.getValue().dtype(), back.get(e.getKey()).dtype(), e.getKey());
      assertEquals(e.getValue().shape(), back.get(e.getKey()).shape(), e.getKey());
      assertArrayEquals(e.getValue().toDoubleArray(), back.get(e.getKey()).toDoubleArray(), e.getKey());
    }
    assertArrayEquals(new double[] {1, 4, 2, 5, 3, 6}, back.get("transposed").toDoubleArray());
  }

  @Test void fileCutShortIsNamedAsSuch() throws IOException {
    Path f = tmp.resolve("m.safetensors");
    Safetensors.write(f, Map.of("w", Tensor.zeros(Shape.of(64), DType.F32, CPU)), Map.of());
    long size = Files.size(f);
    truncate(f, size - 10);
    var e = assertThrows(CheckpointException.class, () -> Safetensors.read(f, CPU, MemoryCategory.PARAMETER));
    assertTrue(e.getMessage().contains("cut short") && e.getMessage().contains("256 bytes of tensor data"), e.getMessage());
    truncate(f, 20); // inside the header
    e = assertThrows(CheckpointException.class, () -> Safetensors.readHeader(f));
    assertTrue(e.getMessage().contains("cut short") && e.getMessage().contains("header needs"), e.getMessage());
    truncate(f, 3);
    e = assertThrows(CheckpointException.class, () -> Safetensors.readHeader(f));
    assertTrue(e.getMessage().contains("cut short") && e.getMessage().contains("3 bytes"), e.getMessage());
  }

  @Test void corruptFilesAreRejected() throws IOException {
    Path f = tmp.resolve("bad.safetensors");
    Files.write(f, ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(Long.MAX_VALUE / 2).array());
    var e = assertThrows(CheckpointException.class, () -> Safetensors.readHeader(f));
    assertTrue(e.getMessage().contains("header length field"), e.getMessage());
    assertBadHeader(f, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, "data_offsets");
    assertBadHeader(f, "{\"w\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2, "U8");
    assertBadHeader(f, "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "gap or overlap");
    assertBadHeader(f, "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 9, "after the last tensor");
    assertBadHeader(f, "[1,2]", 0, "does not start with '{'");
    assertBadHeader(f, "{\"w\":", 0, "not valid JSON");
    assertThrows(CheckpointException.class, () -> Safetensors.readHeader(tmp.resolve("absent.safetensors")));
  }

  private static void assertBadHeader(Path f, String json, int dataBytes, String expected) throws IOException {
    byte[] h = json.getBytes(StandardCharsets.UTF_8);
    Files.write(f, ByteBuffer.allocate(8 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN).putLong(h.length).put(h).array());
    var e = assertThrows(CheckpointException.class, () -> Safetensors.readHeader(f));
    assertTrue(e.getMessage().contains(expected), e.getMessage());
  }

  static void truncate(Path f, long size) throws IOException {
    try (RandomAccessFile r = new RandomAccessFile(f.toFile(), "rw")) {
      r.setLength(size);
    }
  }
}
