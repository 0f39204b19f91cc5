package io.colossal4j.tensor;

/**
 * Element types. {@code byteSize} is the storage width; floating types are computed in at least f32
 * (bf16/f16 are storage formats whose conversions round to nearest even, as PyTorch does).
 */
public enum DType {
  F32(4, true, "float32"),
  F64(8, true, "float64"),
  BF16(2, true, "bfloat16"),
  F16(2, true, "float16"),
  I32(4, false, "int32"),
  I64(8, false, "int64"),
  BOOL(1, false, "bool");

  private final int byteSize;
  private final boolean floating;
  private final String torchName;

  DType(int byteSize, boolean floating, String torchName) {
    this.byteSize = byteSize;
    this.floating = floating;
    this.torchName = torchName;
  }

  public int byteSize() { return byteSize; }

  public boolean isFloating() { return floating; }

  /** The name PyTorch prints for this type ({@code torch.float32}), used in messages and file headers. */
  public String torchName() { return torchName; }

  /** The safetensors header name ({@code F32}, {@code BF16}, {@code I64}, {@code BOOL}). */
  public String safetensorsName() { return name(); }

  /** Result type of a binary op between two dtypes, following PyTorch's promotion for the types we have. */
  public static DType promote(DType a, DType b) {
    if (a == b) return a;
    if (a.floating != b.floating) return a.floating ? a : b;
    if (a.floating) {
      if (a == F64 || b == F64) return F64;
      if (a == F32 || b == F32) return F32;
      return F32; // bf16 with f16 promotes to f32, as in PyTorch
    }
    if (a == BOOL) return b;
    if (b == BOOL) return a;
    return (a == I64 || b == I64) ? I64 : I32;
  }
}
