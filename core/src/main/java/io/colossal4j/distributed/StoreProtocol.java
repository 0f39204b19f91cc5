package io.colossal4j.distributed;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;

/**
 * The store's wire format: explicit fields in big-endian order, never serialised objects.
 * <pre>
 * hello    client: int MAGIC, short VERSION, short n, byte[n] token
 *          server: byte status (OK | ERROR), short VERSION, and for ERROR a string (why)
 * request  int length, byte op, fields (length counts op and fields)
 *          SET key value | GET key long timeoutMillis | ADD key long delta | CAS key byte hasExpected [value] value
 * response byte status (OK | TIMEOUT | ERROR), then: GET/CAS value, ADD long, ERROR string
 * string   short n, byte[n] UTF-8 (keys at most MAX_KEY bytes); value: int n, byte[n]
 * </pre>
 * A frame whose lengths or codes are out of range is answered with ERROR and the connection is closed.
 */
final class StoreProtocol {
  private StoreProtocol() {}

  static final int MAGIC = 0x43344A53; // "C4JS"
  static final short VERSION = 1;
  static final int MAX_KEY = 1024;
  static final int MAX_VALUE = 16 << 20;
  static final int MAX_TOKEN = 256;
  static final int MAX_FRAME = MAX_VALUE * 2 + MAX_KEY + 64;

  static final byte OK = 0, TIMEOUT = 1, ERROR = 2;
  static final byte SET = 1, GET = 2, ADD = 3, CAS = 4;

  static void writeString(DataOutputStream out, String s) throws IOException {
    byte[] b = s.getBytes(StandardCharsets.UTF_8);
    if (b.length > MAX_KEY) throw new IllegalArgumentException("store key or message longer than " + MAX_KEY + " bytes: " + s.substring(0, 40) + "...");
    out.writeShort(b.length);
    out.write(b);
  }

  static String readString(DataInputStream in) throws IOException {
    int n = in.readUnsignedShort();
    if (n > MAX_KEY) throw new MalformedException("string of " + n + " bytes (at most " + MAX_KEY + ")");
    return new String(readExactly(in, n), StandardCharsets.UTF_8);
  }

  static void writeValue(DataOutputStream out, byte[] v) throws IOException {
    if (v.length > MAX_VALUE) throw new IllegalArgumentException("store value of " + v.length + " bytes (at most " + MAX_VALUE + ")");
    out.writeInt(v.length);
    out.write(v);
  }

  static byte[] readValue(DataInputStream in) throws IOException {
    int n = in.readInt();
    if (n < 0 || n > MAX_VALUE) throw new MalformedException("value of " + n + " bytes (0.." + MAX_VALUE + ")");
    return readExactly(in, n);
  }

  static byte[] readExactly(DataInputStream in, int n) throws IOException {
    byte[] b = in.readNBytes(n);
    if (b.length < n) throw new java.io.EOFException("stream ended after " + b.length + " of " + n + " bytes");
    return b;
  }

  /** A peer sent bytes that do not follow this protocol. */
  static final class MalformedException extends IOException {
    MalformedException(String message) { super(message); }
  }

  static byte[] longBytes(long v) {
    return java.nio.ByteBuffer.allocate(8).order(java.nio.ByteOrder.LITTLE_ENDIAN).putLong(v).array();
  }

  static long bytesLong(byte[] b) {
    if (b.length != 8) throw new StoreException("counter value has " + b.length + " bytes, expected 8");
    return java.nio.ByteBuffer.wrap(b).order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong();
  }
}
