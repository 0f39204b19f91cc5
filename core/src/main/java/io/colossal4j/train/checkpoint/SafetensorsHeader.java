package io.colossal4j.train.checkpoint;

import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.train.checkpoint.Safetensors.Entry;
import io.colossal4j.train.checkpoint.Safetensors.Header;
import io.colossal4j.train.json.Json;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Parses and validates a safetensors header with the same rules as the reference implementation, so a file we
 * accept is one Python accepts, and a file cut short is reported as such before any tensor is touched.
 */
final class SafetensorsHeader {
  private SafetensorsHeader() {}

  static Header parse(Path file, FileChannel ch) throws IOException {
    long size = ch.size();
    if (size < 8)
      throw cutShort(file, "it has " + size + " bytes, fewer than the 8-byte header length that starts every safetensors file");
    ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
    readFully(ch, lenBuf, 0);
    long n = lenBuf.getLong(0);
    if (n < 0 || n > Safetensors.MAX_HEADER)
      throw corrupt(file, "its header length field says " + Long.toUnsignedString(n) + " bytes (valid: at most " + Safetensors.MAX_HEADER + ")");
    if (8 + n > size)
      throw cutShort(file, "its header needs " + n + " bytes after the length field, the file has only " + (size - 8));
    ByteBuffer hb = ByteBuffer.allocate((int) n);
    readFully(ch, hb, 8);
    String text = new String(hb.array(), StandardCharsets.UTF_8);
    if (!text.startsWith("{")) throw corrupt(file, "its header does not start with '{'");
    Object parsed;
    try {
      parsed = Json.parse(text, file.getFileName() + " header");
    } catch (IllegalArgumentException e) {
      throw corrupt(file, e.getMessage());
    }
    if (!(parsed instanceof Map<?, ?> root)) throw corrupt(file, "its header is not a JSON object");
    Map<String, String> metadata = new LinkedHashMap<>();
    List<Entry> entries = new ArrayList<>();
    for (Map.Entry<?, ?> e : root.entrySet()) {
      String name = String.valueOf(e.getKey());
      if (name.equals("__metadata__")) metadata(file, e.getValue(), metadata);
      else entries.add(entry(file, name, e.getValue()));
    }
    checkTiling(file, entries, size - 8 - n);
    return new Header(List.copyOf(entries), Map.copyOf(metadata), 8 + n);
  }

  private static void metadata(Path file, Object value, Map<String, String> out) {
    if (!(value instanceof Map<?, ?> m)) throw corrupt(file, "__metadata__ is not an object of strings");
    for (Map.Entry<?, ?> e : m.entrySet()) {
      if (!(e.getValue() instanceof String s)) throw corrupt(file, "__metadata__." + e.getKey() + " is not a string");
      out.put(String.valueOf(e.getKey()), s);
    }
  }

  private static Entry entry(Path file, String name, Object value) {
    if (!(value instanceof Map<?, ?> m)) throw corrupt(file, "tensor '" + name + "' is not described by an object");
    if (!(m.get("dtype") instanceof String dt)) throw corrupt(file, "tensor '" + name + "' has no dtype");
    DType dtype = Arrays.stream(DType.values()).filter(d -> d.safetensorsName().equals(dt)).findFirst()
        .orElseThrow(() -> new CheckpointException(file + ": tensor '" + name + "' has dtype " + dt
            + ", which colossal4j does not support (supported: F32, F64, BF16, F16, I32, I64, BOOL)"));
    long[] dims = longs(file, name, "shape", m.get("shape"), -1);
    long[] off = longs(file, name, "data_offsets", m.get("data_offsets"), 2);
    int[] shape = new int[dims.length];
    long numel = 1;
    for (int i = 0; i < dims.length; i++) {
      if (dims[i] > Integer.MAX_VALUE) throw corrupt(file, "tensor '" + name + "' has a dimension of " + dims[i]);
      shape[i] = (int) dims[i];
      numel = Math.multiplyExact(numel, dims[i]);
    }
    if (off[1] < off[0] || off[1] - off[0] != numel * dtype.byteSize())
      throw corrupt(file, "tensor '" + name + "' (" + dt + " " + Arrays.toString(shape) + ", " + numel * dtype.byteSize()
          + " bytes) has data_offsets " + Arrays.toString(off));
    return new Entry(name, dtype, Shape.of(shape), off[0], off[1]);
  }

  private static long[] longs(Path file, String name, String key, Object value, int expected) {
    if (!(value instanceof List<?> l) || (expected >= 0 && l.size() != expected))
      throw corrupt(file, "tensor '" + name + "' has a malformed " + key + ": " + value);
    long[] out = new long[l.size()];
    for (int i = 0; i < out.length; i++) {
      if (!(l.get(i) instanceof Number num) || num.longValue() < 0 || !(num instanceof Integer || num instanceof Long))
        throw corrupt(file, "tensor '" + name + "' has a malformed " + key + ": " + value);
      out[i] = num.longValue();
    }
    return out;
  }

  /** The reference rules: sorted by offset, the tensors tile [0, dataBytes) exactly. */
  private static void checkTiling(Path file, List<Entry> entries, long dataBytes) {
    List<Entry> sorted = new ArrayList<>(entries);
    sorted.sort(Comparator.comparingLong(Entry::begin).thenComparingLong(Entry::end));
    long expect = 0;
    for (Entry e : sorted) {
      if (e.begin() != expect)
        throw corrupt(file, "tensor '" + e.name() + "' starts at data byte " + e.begin() + ", expected " + expect + " (gap or overlap)");
      expect = e.end();
    }
    if (expect > dataBytes)
      throw cutShort(file, "the header describes " + expect + " bytes of tensor data but the file holds only " + dataBytes);
    if (expect < dataBytes)
      throw corrupt(file, "the file has " + (dataBytes - expect) + " bytes after the last tensor");
  }

  private static void readFully(FileChannel ch, ByteBuffer b, long pos) throws IOException {
    while (b.hasRemaining()) {
      int r = ch.read(b, pos + b.position());
      if (r < 0) throw new IOException("unexpected end of file");
    }
  }

  static CheckpointException cutShort(Path file, String why) {
    return new CheckpointException(file + " is cut short: " + why + " (was a save interrupted? resume from an earlier checkpoint)");
  }

  static CheckpointException corrupt(Path file, String why) {
    return new CheckpointException(file + " is not a valid safetensors file: " + why);
  }
}
