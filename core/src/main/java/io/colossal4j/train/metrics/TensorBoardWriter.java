package io.colossal4j.train.metrics;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.zip.CRC32C;

/**
 * A TensorBoard event file written without TensorFlow: {@code events.out.tfevents.<seconds>.<host>} in the given
 * directory, so {@code tensorboard --logdir runs} shows the curves.
 *
 * <p>Framing (TFRecord): each record is {@code uint64 length, uint32 masked_crc32c(length bytes), data,
 * uint32 masked_crc32c(data)}, little-endian, where {@code masked(c) = ((c >>> 15) | (c << 17)) + 0xa282ead8}.
 * The data is a serialized {@code tensorflow.Event} protobuf: field 1 {@code wall_time} (double), 2 {@code step}
 * (int64), 3 {@code file_version} (string, first record: {@code brain.Event:2}), 5 {@code summary}: a
 * {@code Summary} whose field 1 holds {@code Summary.Value}s of field 1 {@code tag} (string) and field 2
 * {@code simple_value} (float). Every record is flushed. Not thread-safe.
 */
public final class TensorBoardWriter implements AutoCloseable {
  private final Path file;
  private final OutputStream out;

  public TensorBoardWriter(Path dir) {
    try {
      Files.createDirectories(dir);
      String host = InetAddress.getLocalHost().getHostName();
      long seconds = System.currentTimeMillis() / 1000;
      Path f = dir.resolve("events.out.tfevents." + seconds + "." + host);
      for (int i = 1; Files.exists(f); i++) f = dir.resolve("events.out.tfevents." + seconds + "." + host + "." + i);
      this.file = f;
      this.out = Files.newOutputStream(f);
      ByteArrayOutputStream e = new ByteArrayOutputStream();
      Proto.fixed64(e, 1, Double.doubleToLongBits(now()));
      Proto.bytes(e, 3, "brain.Event:2".getBytes(StandardCharsets.UTF_8));
      record(e.toByteArray());
    } catch (IOException e) {
      throw new UncheckedIOException("cannot create a TensorBoard event file in " + dir + ": " + e.getMessage(), e);
    }
  }

  public Path file() { return file; }

  /** Writes one scalar point of the curve {@code tag} (e.g. {@code train/loss}). */
  public void scalar(String tag, double value, long step) {
    ByteArrayOutputStream v = new ByteArrayOutputStream();
    Proto.bytes(v, 1, tag.getBytes(StandardCharsets.UTF_8));
    Proto.fixed32(v, 2, Float.floatToRawIntBits((float) value));
    ByteArrayOutputStream summary = new ByteArrayOutputStream();
    Proto.bytes(summary, 1, v.toByteArray());
    ByteArrayOutputStream e = new ByteArrayOutputStream();
    Proto.fixed64(e, 1, Double.doubleToLongBits(now()));
    Proto.varint(e, 2, step);
    Proto.bytes(e, 5, summary.toByteArray());
    try {
      record(e.toByteArray());
    } catch (IOException ex) {
      throw new UncheckedIOException("cannot write to " + file + ": " + ex.getMessage(), ex);
    }
  }

  private void record(byte[] data) throws IOException {
    byte[] len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(data.length).array();
    out.write(len);
    out.write(le32(maskedCrc32c(len)));
    out.write(data);
    out.write(le32(maskedCrc32c(data)));
    out.flush();
  }

  private static double now() { return System.currentTimeMillis() / 1000.0; }

  private static byte[] le32(int v) { return ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(v).array(); }

  /** CRC32C (Castagnoli) of {@code b}, rotated right by 15 bits plus a constant, as TFRecord stores it. */
  static int maskedCrc32c(byte[] b) {
    CRC32C crc = new CRC32C();
    crc.update(b);
    int c = (int) crc.getValue();
    return ((c >>> 15) | (c << 17)) + 0xa282ead8;
  }

  @Override public void close() {
    try {
      out.close();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** The few protobuf wire encodings an Event needs. */
  static final class Proto {
    private Proto() {}

    static void varint(ByteArrayOutputStream o, int field, long v) {
      rawVarint(o, (long) field << 3);
      rawVarint(o, v);
    }

    static void fixed64(ByteArrayOutputStream o, int field, long v) {
      rawVarint(o, ((long) field << 3) | 1);
      for (int i = 0; i < 8; i++) o.write((int) (v >>> (8 * i)));
    }

    static void fixed32(ByteArrayOutputStream o, int field, int v) {
      rawVarint(o, ((long) field << 3) | 5);
      for (int i = 0; i < 4; i++) o.write(v >>> (8 * i));
    }

    static void bytes(ByteArrayOutputStream o, int field, byte[] b) {
      rawVarint(o, ((long) field << 3) | 2);
      rawVarint(o, b.length);
      o.writeBytes(b);
    }

    static void rawVarint(ByteArrayOutputStream o, long v) {
      while ((v & ~0x7FL) != 0) {
        o.write((int) ((v & 0x7F) | 0x80));
        v >>>= 7;
      }
      o.write((int) v);
    }
  }
}
