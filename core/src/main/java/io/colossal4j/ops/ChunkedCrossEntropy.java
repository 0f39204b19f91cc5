package io.colossal4j.ops;

import io.colossal4j.autograd.Autograd;
import io.colossal4j.backend.BinaryOp;
import io.colossal4j.backend.Kernels;
import io.colossal4j.backend.UnaryOp;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;

/**
 * The per-row loss of {@link Loss#crossEntropy} for logits [N, C] without label smoothing, −log_softmax(x)[i, t_i]
 * masked by the valid targets, computed over row chunks so that the [N, C] log-probabilities are never held whole:
 * forward keeps only the loss per row, and backward recomputes each chunk's log-probabilities, builds that chunk's
 * upstream gradient (zeros, then −g·valid scattered at the targets) and writes the log-softmax gradient into its
 * rows of the logits' gradient, releasing both temporaries before the next chunk.
 *
 * <p>Why: PyTorch's cross-entropy (log_softmax + nll_loss) saves the log-probabilities and, in backward, holds
 * them with their gradient and the logits' gradient at once: with the logits, 4·N·C elements (GPT-2 medium,
 * 8192 × 50304 bf16: 3.1 GiB, the step's peak). Here the loss backward holds the logits, their gradient and two
 * chunks. Same kernels, same order, rows independent: the values and gradients equal the composite's bit for bit
 * (the recomputed log-probabilities are those the composite saved).
 *
 * <p>Shapes: logits [N, C] (any strides), safe targets [N] i64/i32 within [0, C), validF [N] in the logits'
 * dtype (1 valid, 0 ignored). Result [N] in the logits' dtype.
 */
final class ChunkedCrossEntropy {
  private ChunkedCrossEntropy() {}

  /** Temporaries per chunk: at most this many bytes each (and at least one row). */
  static final long CHUNK_BYTES = 64L << 20;

  static Tensor perRow(Tensor logits, Tensor safe, Tensor validF, long chunkBytes) {
    if (logits.backend().kernels().fusedCrossEntropy(logits, safe)) return fused(logits, safe, validF);
    int n = logits.size(0), c = logits.size(1);
    int rows = (int) Math.max(1, Math.min(n, chunkBytes / ((long) c * logits.dtype().byteSize())));
    Kernels k = logits.backend().kernels();
    Tensor out = OpSupport.empty(Shape.of(n), logits.dtype(), logits.backend());
    Tensor index = Views.unsqueeze(safe.detach(), 1);
    for (int r0 = 0; r0 < n; r0 += rows) {
      int len = Math.min(rows, n - r0);
      Tensor logp = OpSupport.empty(Shape.of(len, c), logits.dtype(), logits.backend());
      k.softmax(Views.narrow(logits.detach(), 0, r0, len), 1, true, logp);
      Tensor picked = out.view(Shape.of(len, 1), new long[] {1, 1}, out.offset() + r0);
      k.gather(logp, 1, Views.narrow(index, 0, r0, len), picked);
      logp.storage().release();
    }
    k.unary(UnaryOp.NEG, out, out);
    k.binary(BinaryOp.MUL, out, validF, out);
    Tensor x = logits;
    return Autograd.recordSaving("cross_entropy", out, Autograd.saving(logits, safe, validF), g -> new Tensor[] {backward(x, index, validF, g, rows)}, logits);
  }

  /**
   * A backend's fused kernels ({@code Kernels.crossEntropyForward/Backward}): the row log-sum-exp in f32 is all
   * that is saved, the forward reads the logits once, the backward reads them once and writes their gradient,
   * (softmax − one-hot)·g·valid. Not bit-identical to the composite: nothing is rounded to the logits' dtype
   * between the log-sum-exp and the result (more accurate for bf16 logits, within its rounding of the composite).
   */
  private static Tensor fused(Tensor logits, Tensor safe, Tensor validF) {
    int n = logits.size(0);
    Kernels k = logits.backend().kernels();
    Tensor out = OpSupport.empty(Shape.of(n), logits.dtype(), logits.backend());
    Tensor lse = OpSupport.empty(Shape.of(n), io.colossal4j.tensor.DType.F32, logits.backend());
    k.crossEntropyForward(logits.detach(), safe, out, lse);
    k.binary(BinaryOp.MUL, out, validF, out);
    Tensor x = logits;
    return Autograd.recordSaving("cross_entropy", out, Autograd.saving(logits, safe, validF, lse), g -> {
      Tensor w = Arith.mul(g, validF);
      if (!w.isContiguous() || w.dtype() != x.dtype()) w = Arith.cast(Views.contiguous(w), x.dtype());
      Tensor gx = OpSupport.empty(x.shape(), x.dtype(), x.backend());
      k.crossEntropyBackward(x.detach(), safe, lse, w, gx);
      return new Tensor[] {gx};
    }, logits);
  }

  /** The logits' gradient: per chunk, log_softmax's backward of (−g·valid at the targets, 0 elsewhere). */
  private static Tensor backward(Tensor logits, Tensor index, Tensor validF, Tensor g, int rows) {
    int n = logits.size(0), c = logits.size(1);
    Kernels k = logits.backend().kernels();
    Tensor w = Views.unsqueeze(Arith.neg(Arith.mul(g, validF)), 1);   // as the composite's mul and neg backward rules
    Tensor gx = OpSupport.empty(logits.shape(), logits.dtype(), logits.backend());
    for (int r0 = 0; r0 < n; r0 += rows) {
      int len = Math.min(rows, n - r0);
      Tensor logp = OpSupport.empty(Shape.of(len, c), logits.dtype(), logits.backend());
      k.softmax(Views.narrow(logits.detach(), 0, r0, len), 1, true, logp);
      Tensor gy = OpSupport.empty(Shape.of(len, c), g.dtype(), g.backend());
      k.fill(gy, 0);
      k.scatterAdd(gy, 1, Views.narrow(index, 0, r0, len), Views.narrow(w, 0, r0, len));
      k.softmaxBackward(logp, gy, 1, true, Views.narrow(gx, 0, r0, len));
      logp.storage().release();
      gy.storage().release();
    }
    return gx;
  }
}
