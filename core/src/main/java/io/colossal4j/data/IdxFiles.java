package io.colossal4j.data;

import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.zip.GZIPInputStream;
import java.util.zip.ZipException;

/**
 * The idx format of MNIST-style files: a big-endian magic number {@code 0x00 0x00 <type> <rank>}, {@code rank}
 * big-endian int32 dimensions, then the data. We read the unsigned-byte type (0x08), the only one these data
 * sets use, from plain or gzip-compressed files, and check the magic and the exact size before returning.
 */
final class IdxFiles {
  private IdxFiles() {}

  /** A decoded idx array of unsigned bytes. */
  record Array(int[] dims, byte[] data) {}

  static Array read(Path file, int expectedRank) {
    byte[] bytes = readAll(file);
    if (bytes.length < 4)
      throw new DataException(file + " is truncated: " + bytes.length + " bytes, not even the 4-byte idx magic number");
    ByteBuffer b = ByteBuffer.wrap(bytes);
    int magic = b.getInt();
    int expectedMagic = 0x00000800 | expectedRank;
    if (magic != expectedMagic)
      throw new DataException(file + " is not an idx file of unsigned bytes with " + expectedRank + " dimensions: magic number 0x"
          + "%08x".formatted(magic) + ", expected 0x" + "%08x".formatted(expectedMagic) + " (corrupt or a different file?)");
    long header = 4 + 4L * expectedRank;
    if (bytes.length < header)
      throw new DataException(file + " is truncated: " + bytes.length + " bytes, the idx header alone needs " + header);
    int[] dims = new int[expectedRank];
    long expected = header;
    long count = 1;
    for (int i = 0; i < expectedRank; i++) {
      dims[i] = b.getInt();
      if (dims[i] < 0) throw new DataException(file + " is corrupt: dimension " + i + " is " + dims[i]);
      count *= dims[i];
    }
    expected += count;
    if (bytes.length != expected)
      throw new DataException(file + " is " + (bytes.length < expected ? "truncated" : "corrupt") + ": its header promises "
          + java.util.Arrays.toString(dims) + " = " + expected + " bytes, the file holds " + bytes.length);
    byte[] data = new byte[Math.toIntExact(count)];
    b.get(data);
    return new Array(dims, data);
  }

  private static byte[] readAll(Path file) {
    try {
      if (!file.getFileName().toString().endsWith(".gz")) return Files.readAllBytes(file);
      try (InputStream in = new GZIPInputStream(Files.newInputStream(file), 1 << 16)) {
        return in.readAllBytes();
      }
    } catch (EOFException e) {
      throw new DataException(file + " is truncated: the gzip stream ends early (" + e.getMessage() + ")", e);
    } catch (ZipException e) {
      throw new DataException(file + " is corrupt: not a valid gzip file (" + e.getMessage() + ")", e);
    } catch (IOException e) {
      throw new DataException("could not read " + file + ": " + e, e);
    }
  }
}
