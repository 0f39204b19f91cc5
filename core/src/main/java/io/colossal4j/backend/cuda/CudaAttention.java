package io.colossal4j.backend.cuda;

import io.colossal4j.backend.FusedAttention;
import io.colossal4j.backend.cuda.ffi.Driver.Dim3;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.MemoryCategory;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SegmentAllocator;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.Set;

/**
 * Our fused attention kernel (attention.cu, FlashAttention-2 style) behind {@link FusedAttention}. It
 * supports bf16 and f16 q, k, v of one dtype with head dims 32, 64, 80, 96 or 128 (Dv = D), no bias, no
 * dropout, causal or not, any sequence lengths. Operands may be strided views (the q, k, v of a fused qkv
 * projection are) as long as the head dim is contiguous, every other stride and the offset are multiples of
 * 8 elements (16-byte loads), and the batch dims merge into at most two. Anything else takes the composite.
 *
 * <p>Numerics: logits, softmax and both products accumulate in f32; the probabilities and dS are rounded to
 * the operands' 16-bit type before their products (as FlashAttention does). Legend: B the flattened batch
 * (B1 outer × B2 inner), N rows, D head dim.
 */
final class CudaAttention implements FusedAttention {
  static final Set<Integer> HEAD_DIMS = Set.of(32, 64, 80, 96, 128);
  private static final int ROWS = 64, THREADS = 128;

  /**
   * The kernel generations in attention.cu / attention2.cu / attention3.cu. {@code ATOMIC_DQ}: plain tile loads,
   * one backward kernel accumulating dQ with f32 atomics. {@code SPLIT_DQ}: cp.async double-buffered tiles, masks
   * only on edge tiles, and a backward in two kernels (dK/dV per key tile, dQ per query tile) without atomics.
   * {@code WIDE}: as {@code SPLIT_DQ} with 32 rows per warp (128 per block) and ldmatrix fragments, for head dims
   * in {@link #WIDE_HEAD_DIMS}; other head dims run {@code SPLIT_DQ}.
   */
  enum Variant { ATOMIC_DQ, SPLIT_DQ, WIDE }

  static final Set<Integer> WIDE_HEAD_DIMS = Set.of(32, 64, 80);
  private static final int WIDE_ROWS = 128;

  private final CudaKernels k;
  private final Variant variant;

  CudaAttention(CudaKernels kernels, Variant variant) {
    this.k = kernels;
    this.variant = variant;
  }

  Variant variant() { return variant; }

  /** The generation that runs for head dim d: {@code WIDE} only where its accumulators fit the registers. */
  private Variant effective(int d) {
    return variant == Variant.WIDE && !WIDE_HEAD_DIMS.contains(d) ? Variant.SPLIT_DQ : variant;
  }

  /** Batch dims merged to B1 × B2, with each operand's (outer, inner) batch strides in the order given. */
  record Batch(int b1, int b2, long[][] strides) {
    int count() { return b1 * b2; }
  }

  /** The merged batch of the operands (all [..., N, D] with equal batch dims), or null when more than two dims remain. */
  static Batch batch(Tensor... ts) {
    int r = ts[0].rank() - 2;
    Shape shape = Shape.of(Arrays.copyOf(ts[0].shape().toArray(), r));
    long[][] st = new long[ts.length][];
    for (int i = 0; i < ts.length; i++) st[i] = Arrays.copyOf(ts[i].strides(), r);
    CudaGeometry.Space s = CudaGeometry.coalesce(shape, st, new long[ts.length]);
    if (s.rank() > 2) return null;
    long[][] out = new long[ts.length][2];
    int b1 = 1, b2 = 1;
    if (s.rank() >= 1) {
      int inner = s.rank() - 1;
      b2 = s.sizes()[inner];
      for (int i = 0; i < ts.length; i++) out[i][1] = s.strides()[i][inner];
    }
    if (s.rank() == 2) {
      b1 = s.sizes()[0];
      for (int i = 0; i < ts.length; i++) out[i][0] = s.strides()[i][0];
    }
    return new Batch(b1, b2, out);
  }

  /** Head dim contiguous, rows and offset 16-byte aligned. */
  static boolean aligned(Tensor t) {
    if (t.stride(-1) != 1 || t.offset() % 8 != 0) return false;
    for (int d = 0; d < t.rank() - 1; d++) if (t.stride(d) % 8 != 0) return false;
    return true;
  }

  @Override public boolean supports(Tensor q, Tensor kt, Tensor v, Tensor bias, Spec spec) {
    if (bias != null || spec.dropoutP() != 0) return false;
    DType dt = q.dtype();
    if ((dt != DType.BF16 && dt != DType.F16) || kt.dtype() != dt || v.dtype() != dt) return false;
    for (Tensor t : new Tensor[] {q, kt, v}) if (t.backend() != k.backend() || t.rank() < 2 || !aligned(t)) return false;
    int d = q.size(-1);
    if (!HEAD_DIMS.contains(d) || kt.size(-1) != d || v.size(-1) != d || q.size(-2) < 1 || kt.size(-2) < 1) return false;
    Batch b = batch(q, kt, v);
    return b != null && (long) b.b1() * b.b2() <= 65535 && !(spec.scale() <= 0) && Double.isFinite(spec.scale());
  }

  void require(Tensor q, Tensor kt, Tensor v, Tensor bias, Spec spec) {
    if (!supports(q, kt, v, bias, spec))
      throw new TensorException("fused attention on CUDA does not support q " + q.shape() + " " + q.dtype() + ", k " + kt.shape() + ", v "
          + v.shape() + (bias != null ? " with a bias" : "") + (spec.dropoutP() != 0 ? " with dropout" : "") + "; check supports() first");
  }

  /** struct ARef { const void* p; i64 sb1, sb2, sn; }: 32 bytes. */
  private MemorySegment ref(SegmentAllocator a, Tensor t, long[] batchStrides) {
    MemorySegment s = a.allocate(32, 8);
    s.set(ValueLayout.JAVA_LONG, 0, k.ptr(t) + t.offset() * t.dtype().byteSize());
    s.set(ValueLayout.JAVA_LONG, 8, batchStrides[0]);
    s.set(ValueLayout.JAVA_LONG, 16, batchStrides[1]);
    s.set(ValueLayout.JAVA_LONG, 24, t.stride(-2));
    return s;
  }

  private static String suffix(Tensor q) { return (q.dtype() == DType.F16 ? "f16_" : "bf16_") + q.size(-1); }

  /** Outputs may be strided views (a packed [B, N, H·D] layout seen as [B, H, N, D]) with unit last stride and 16-byte aligned rows. */
  static void requireOutput(String what, Tensor t, Tensor like) {
    if (!t.shape().equals(like.shape()) || t.dtype() != like.dtype() || !aligned(t))
      throw new TensorException("fused attention: " + what + " must be a " + like.shape() + " " + like.dtype()
          + " view with unit last stride and other strides and offset multiples of 8, got " + t.shape() + " " + t.dtype()
          + " strides " + Arrays.toString(t.strides()) + " offset " + t.offset());
  }

  @Override public boolean writesStridedOutputs() { return true; }

  @Override public void forward(Tensor q, Tensor kt, Tensor v, Tensor bias, Spec spec, Tensor out, Tensor lse) {
    require(q, kt, v, bias, spec);
    requireOutput("out", out, q);
    int nq = q.size(-2), nk = kt.size(-2), d = q.size(-1);
    Batch b = batch(q, kt, v, out);
    if (b == null) throw new TensorException("fused attention: output " + out.shape() + " batch layout does not merge with the operands'");
    if (lse.dtype() != DType.F32 || !lse.isContiguous() || lse.numel() != (long) b.count() * nq)
      throw new TensorException("fused attention: lse must be contiguous f32 with " + (long) b.count() * nq + " elements, got " + lse.shape() + " " + lse.dtype());
    long plse = k.ptr(lse) + lse.offset() * 4;
    float sl2 = (float) (spec.scale() / Math.log(2));
    Variant kind = effective(d);
    int rows = kind == Variant.WIDE ? WIDE_ROWS : ROWS;
    int smem = switch (kind) {
      case ATOMIC_DQ -> 3 * ROWS * (d + 8) * 2;
      case SPLIT_DQ -> 5 * ROWS * (d + 8) * 2;
      case WIDE -> (WIDE_ROWS + 4 * ROWS) * (d + 8) * 2;
    };
    String name = switch (kind) { case ATOMIC_DQ -> "attn_fwd_"; case SPLIT_DQ -> "attn2_fwd_"; case WIDE -> "attn3_fwd_"; };
    k.launch(name + suffix(q), new Dim3((nq + rows - 1) / rows, b.count(), 1), Dim3.of(THREADS), smem, (a, args) ->
        args.struct(ref(a, q, b.strides()[0])).struct(ref(a, kt, b.strides()[1])).struct(ref(a, v, b.strides()[2])).struct(ref(a, out, b.strides()[3]))
            .ptr(plse).i32(b.b2()).i32(nq).i32(nk).i32(spec.causal() ? 1 : 0).f32(sl2));
  }

  @Override public void backward(Tensor gOut, Tensor q, Tensor kt, Tensor v, Tensor bias, Tensor out, Tensor lse, Spec spec,
                                 Tensor gq, Tensor gk, Tensor gv, Tensor gBias) {
    require(q, kt, v, bias, spec);
    requireOutput("gq", gq, q);
    requireOutput("gk", gk, kt);
    requireOutput("gv", gv, v);
    Tensor go = gOut;
    if (go.dtype() != q.dtype() || !go.shape().equals(out.shape()) || !aligned(go) || batch(q, go) == null) {
      go = Tensor.empty(out.shape(), q.dtype(), k.backend(), MemoryCategory.TEMPORARY);
      k.copy(gOut, go);
    }
    int nq = q.size(-2), nk = kt.size(-2), d = q.size(-1);
    Batch b = batch(q, kt, v, go, out, gq, gk, gv);
    if (b == null) throw new TensorException("fused attention backward: batch layouts of the gradients do not merge with the operands'");
    long rows = (long) b.count() * nq;
    Tensor dd = Tensor.empty(Shape.of(Math.toIntExact(rows)), DType.F32, k.backend(), MemoryCategory.TEMPORARY);
    long pdd = k.ptr(dd), plse = k.ptr(lse) + lse.offset() * 4;
    String sfx = suffix(q);
    long[][] s = b.strides();
    Tensor goF = go;
    k.launch("attn_bwd_dot_" + sfx, Dim3.of((int) ((rows + 3) / 4)), Dim3.of(THREADS), (a, args) ->
        args.struct(ref(a, out, s[4])).struct(ref(a, goF, s[3])).ptr(pdd).i32(b.b2()).i32(nq).i64(rows));
    float scale = (float) spec.scale(), sl2 = (float) (spec.scale() / Math.log(2));
    int causal = spec.causal() ? 1 : 0, ld = d + 8;
    Variant kind = effective(d);
    if (kind == Variant.WIDE) {
      int wide = (2 * WIDE_ROWS + 4 * ROWS) * ld * 2;
      k.launch("attn3_bwd_kv_" + sfx, new Dim3((nk + WIDE_ROWS - 1) / WIDE_ROWS, b.count(), 1), Dim3.of(THREADS), wide + 4 * ROWS * 4, (a, args) ->
          args.struct(ref(a, q, s[0])).struct(ref(a, kt, s[1])).struct(ref(a, v, s[2])).struct(ref(a, goF, s[3])).ptr(plse).ptr(pdd)
              .struct(ref(a, gk, s[6])).struct(ref(a, gv, s[7])).i32(b.b2()).i32(nq).i32(nk).i32(causal).f32(sl2).f32(scale));
      k.launch("attn3_bwd_q_" + sfx, new Dim3((nq + WIDE_ROWS - 1) / WIDE_ROWS, b.count(), 1), Dim3.of(THREADS), wide, (a, args) ->
          args.struct(ref(a, q, s[0])).struct(ref(a, kt, s[1])).struct(ref(a, v, s[2])).struct(ref(a, goF, s[3])).ptr(plse).ptr(pdd)
              .struct(ref(a, gq, s[5])).i32(b.b2()).i32(nq).i32(nk).i32(causal).f32(sl2).f32(scale));
    } else if (kind == Variant.SPLIT_DQ) {
      k.launch("attn2_bwd_kv_" + sfx, new Dim3((nk + ROWS - 1) / ROWS, b.count(), 1), Dim3.of(THREADS), 6 * ROWS * ld * 2 + 4 * ROWS * 4, (a, args) ->
          args.struct(ref(a, q, s[0])).struct(ref(a, kt, s[1])).struct(ref(a, v, s[2])).struct(ref(a, goF, s[3])).ptr(plse).ptr(pdd)
              .struct(ref(a, gk, s[6])).struct(ref(a, gv, s[7])).i32(b.b2()).i32(nq).i32(nk).i32(causal).f32(sl2).f32(scale));
      k.launch("attn2_bwd_q_" + sfx, new Dim3((nq + ROWS - 1) / ROWS, b.count(), 1), Dim3.of(THREADS), 6 * ROWS * ld * 2, (a, args) ->
          args.struct(ref(a, q, s[0])).struct(ref(a, kt, s[1])).struct(ref(a, v, s[2])).struct(ref(a, goF, s[3])).ptr(plse).ptr(pdd)
              .struct(ref(a, gq, s[5])).i32(b.b2()).i32(nq).i32(nk).i32(causal).f32(sl2).f32(scale));
    } else {
      Tensor dq = Tensor.empty(Shape.of(Math.toIntExact(rows * d)), DType.F32, k.backend(), MemoryCategory.TEMPORARY);
      k.fill(dq, 0);
      long pdq = k.ptr(dq);
      k.launch("attn_bwd_" + sfx, new Dim3((nk + ROWS - 1) / ROWS, b.count(), 1), Dim3.of(THREADS), (4 * ROWS * ld + ROWS * 72) * 2 + 2 * ROWS * 4,
          (a, args) -> args.struct(ref(a, q, s[0])).struct(ref(a, kt, s[1])).struct(ref(a, v, s[2])).struct(ref(a, goF, s[3])).ptr(plse).ptr(pdd)
              .ptr(pdq).struct(ref(a, gk, s[6])).struct(ref(a, gv, s[7])).i32(b.b2()).i32(nq).i32(nk).i32(causal).f32(sl2).f32(scale));
      long pairs = rows * d / 2;
      k.launch("attn_dq_" + sfx, Dim3.of(k.blocks(pairs, CudaKernels.THREADS)), Dim3.of(CudaKernels.THREADS), (a, args) ->
          args.ptr(pdq).struct(ref(a, gq, s[5])).i32(b.b2()).i32(nq).i64(pairs));
      dq.storage().release();
    }
    dd.storage().release();
    if (go != gOut) go.storage().release();
  }
}
