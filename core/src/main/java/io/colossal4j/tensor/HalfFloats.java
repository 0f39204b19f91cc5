package io.colossal4j.tensor;

/** Bit-exact conversions between f32 and the 16-bit float formats, rounding to nearest even. */
public final class HalfFloats {
  private HalfFloats() {}

  /** f32 to bf16 bits: round to nearest even on the 16 dropped bits; NaN stays a quiet NaN. */
  public static short toBf16(float f) {
    int bits = Float.floatToRawIntBits(f);
    if ((bits & 0x7fffffff) > 0x7f800000) return (short) ((bits >>> 16) | 0x0040);
    int lsb = (bits >>> 16) & 1;
    return (short) ((bits + 0x7fff + lsb) >>> 16);
  }

  public static float fromBf16(short b) {
    return Float.intBitsToFloat((b & 0xffff) << 16);
  }

  /** f32 to IEEE binary16 bits, round to nearest even (overflow to infinity, subnormals kept). */
  public static short toF16(float f) {
    return Float.floatToFloat16(f);
  }

  public static float fromF16(short h) {
    return Float.float16ToFloat(h);
  }
}
