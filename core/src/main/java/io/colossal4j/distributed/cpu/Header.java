package io.colossal4j.distributed.cpu;

import io.colossal4j.tensor.DType;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The fixed-size header in front of every data message. Besides routing ({@code group}, {@code channel},
 * {@code seq}, {@code step}) it carries what the sender believes the operation is ({@code op}, {@code dtype},
 * {@code numel}) so the receiver can detect ranks that disagree instead of silently mixing data.
 *
 * @param src sender's world rank
 * @param group id of the group the operation belongs to
 * @param channel {@link #COLLECTIVE} (seq = the group's collective counter) or {@link #P2P} (seq = tag)
 * @param step index within the operation (collectives) or per-tag message counter (point-to-point)
 * @param numel elements of the whole tensor the operation was called with (not of this payload)
 * @param payloadBytes bytes that follow the header
 */
record Header(int src, int group, int channel, Op op, DType dtype, long seq, int step, long numel, long payloadBytes) {
  static final int COLLECTIVE = 0;
  static final int P2P = 1;
  static final int BYTES = 48;
  /** No single message is larger than this; bigger payloads are split by the algorithms. */
  static final long MAX_PAYLOAD = 1L << 30;

  Key key() { return new Key(src, group, channel, seq, step); }

  /** What a receiver waits for. */
  record Key(int src, int group, int channel, long seq, int step) {}

  ByteBuffer encode() {
    ByteBuffer b = ByteBuffer.allocate(BYTES).order(ByteOrder.LITTLE_ENDIAN);
    b.putInt(src).putInt(group).put((byte) channel).put((byte) op.ordinal()).put((byte) (dtype == null ? 0 : dtype.ordinal() + 1))
        .put((byte) 0).putLong(seq).putInt(step).putLong(numel).putLong(payloadBytes).putLong(0);
    return b.flip();
  }

  /** Parses a header, rejecting values no correct peer sends (the stream is then unusable and is closed). */
  static Header decode(ByteBuffer b) {
    b.order(ByteOrder.LITTLE_ENDIAN);
    int src = b.getInt(), group = b.getInt(), channel = b.get(), opCode = b.get(), dt = b.get();
    b.get();
    long seq = b.getLong();
    int step = b.getInt();
    long numel = b.getLong(), payload = b.getLong();
    if (channel != COLLECTIVE && channel != P2P) throw new IllegalArgumentException("bad channel " + channel);
    if (dt < 0 || dt > DType.values().length) throw new IllegalArgumentException("bad dtype code " + dt);
    if (payload < 0 || payload > MAX_PAYLOAD) throw new IllegalArgumentException("bad payload size " + payload);
    return new Header(src, group, channel, Op.fromCode(opCode), dt == 0 ? null : DType.values()[dt - 1], seq, step, numel, payload);
  }
}
