package io.colossal4j.train.checkpoint;

import io.colossal4j.backend.Backend;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.MemoryCategory;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.train.json.Json;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The safetensors format (huggingface/safetensors): an unsigned 64-bit little-endian header length N, N bytes
 * of UTF-8 JSON (padded with spaces so the data starts 8-byte aligned), then the tensor bytes, little-endian,
 * row-major. The JSON maps each tensor name to {@code {"dtype","shape","data_offsets":[begin,end]}} with offsets
 * relative to the data start; the optional {@code "__metadata__"} maps strings to strings. Readers (Python's
 * {@code safetensors}, timm) require the tensors to tile the data exactly: no gaps, no overlap, no trailing bytes.
 *
 * <p>Writes are atomic ({@link AtomicFiles}); reads map the file and copy each tensor to the given backend.
 */
public final class Safetensors {
  private Safetensors() {}

  /** The Python library refuses headers above 100 MB; so do we, before allocating anything. */
  static final long MAX_HEADER = 100_000_000L;
  private static final long CHUNK = 1L << 26;

  /** One tensor's entry in the header; offsets are relative to {@link Header#dataStart()}. */
  public record Entry(String name, DType dtype, Shape shape, long begin, long end) {}

  /** A parsed, validated header: entries in file order, the metadata, and where the tensor bytes start. */
  public record Header(List<Entry> entries, Map<String, String> metadata, long dataStart) {
    public Map<String, Entry> byName() {
      Map<String, Entry> m = new LinkedHashMap<>();
      for (Entry e : entries) m.put(e.name(), e);
      return m;
    }
  }

  /** Tensors (insertion order of the file) plus metadata. */
  public record Contents(Map<String, Tensor> tensors, Map<String, String> metadata) {}

  public static void write(Path file, Map<String, Tensor> tensors, Map<String, String> metadata) {
    write(file, tensors, metadata, WriteObserver.NONE);
  }

  static void write(Path file, Map<String, Tensor> tensors, Map<String, String> metadata, WriteObserver observer) {
    if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN)
      throw new CheckpointException("safetensors data is little-endian; this host is big-endian, which is not supported");
    byte[] header = headerBytes(tensors, metadata);
    try {
      AtomicFiles.write(file, ch -> {
        ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, header.length);
        writeFully(ch, len);
        writeFully(ch, ByteBuffer.wrap(header));
        long written = 8 + header.length;
        observer.written(file, written);
        for (Tensor t : tensors.values()) written = writeTensor(ch, t, file, written, observer);
      });
    } catch (IOException e) {
      throw new CheckpointException("could not write " + file + ": " + e.getMessage(), e);
    }
  }

  private static byte[] headerBytes(Map<String, Tensor> tensors, Map<String, String> metadata) {
    Map<String, Object> json = new LinkedHashMap<>();
    if (metadata != null && !metadata.isEmpty()) json.put("__metadata__", new LinkedHashMap<>(metadata));
    long offset = 0;
    for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
      if (e.getKey().equals("__metadata__") || e.getKey().isEmpty())
        throw new CheckpointException("'" + e.getKey() + "' cannot be a tensor name in a safetensors file");
      Tensor t = e.getValue();
      long bytes = t.numel() * t.dtype().byteSize();
      List<Long> shape = new ArrayList<>();
      for (int d : t.shape().toArray()) shape.add((long) d);
      Map<String, Object> entry = new LinkedHashMap<>();
      entry.put("dtype", t.dtype().safetensorsName());
      entry.put("shape", shape);
      entry.put("data_offsets", List.of(offset, offset + bytes));
      json.put(e.getKey(), entry);
      offset += bytes;
    }
    // Pad with spaces (as the reference writer does) so the tensor data starts at an 8-byte boundary.
    byte[] text = Json.write(json).getBytes(StandardCharsets.UTF_8);
    byte[] padded = new byte[(text.length + 7) / 8 * 8];
    java.util.Arrays.fill(padded, (byte) ' ');
    System.arraycopy(text, 0, padded, 0, text.length);
    return padded;
  }

  private static long writeTensor(FileChannel ch, Tensor t, Path file, long written, WriteObserver observer) throws IOException {
    long bytes = t.numel() * t.dtype().byteSize();
    if (bytes == 0) return written;
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment host = arena.allocate(bytes, 8);
      t.backend().copyToHost(t, host);
      for (long pos = 0; pos < bytes; pos += CHUNK) {
        writeFully(ch, host.asSlice(pos, Math.min(CHUNK, bytes - pos)).asByteBuffer());
        written += Math.min(CHUNK, bytes - pos);
        observer.written(file, written);
      }
    }
    return written;
  }

  private static void writeFully(FileChannel ch, ByteBuffer b) throws IOException {
    while (b.hasRemaining()) ch.write(b);
  }

  /** Reads and validates the header only (cheap: does not touch the tensor bytes). */
  public static Header readHeader(Path file) {
    try (FileChannel ch = open(file)) {
      return SafetensorsHeader.parse(file, ch);
    } catch (IOException e) {
      throw new CheckpointException("could not read " + file + ": " + e.getMessage(), e);
    }
  }

  /** Reads every tensor onto {@code backend} (charged to {@code category}). */
  public static Contents read(Path file, Backend backend, MemoryCategory category) {
    try (FileChannel ch = open(file); Arena arena = Arena.ofConfined()) {
      Header h = SafetensorsHeader.parse(file, ch);
      MemorySegment map = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena);
      Map<String, Tensor> out = new LinkedHashMap<>();
      for (Entry e : h.entries()) {
        Tensor t = Tensor.empty(e.shape(), e.dtype(), backend, category);
        if (e.end() > e.begin()) backend.copyFromHost(map.asSlice(h.dataStart() + e.begin(), e.end() - e.begin()), t);
        out.put(e.name(), t);
      }
      return new Contents(out, h.metadata());
    } catch (IOException e) {
      throw new CheckpointException("could not read " + file + ": " + e.getMessage(), e);
    }
  }

  private static FileChannel open(Path file) throws IOException {
    try {
      return FileChannel.open(file, StandardOpenOption.READ);
    } catch (NoSuchFileException e) {
      throw new CheckpointException("no safetensors file at " + file.toAbsolutePath());
    }
  }
}
