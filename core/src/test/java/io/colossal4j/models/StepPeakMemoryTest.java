package io.colossal4j.models;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.backend.MemoryTrace;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.models.gpt.Gpt;
import io.colossal4j.models.gpt.GptConfig;
import io.colossal4j.models.vit.ViTConfig;
import io.colossal4j.models.vit.VisionTransformer;
import io.colossal4j.nn.ModuleContext;
import io.colossal4j.nn.UnitModel;
import io.colossal4j.ops.Loss;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.testing.StepMemoryProbe;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The memory of {@code colossal bench gpu}'s training steps, traced on the CPU ({@link StepMemoryProbe}: same
 * autograd, ledger and categories as CUDA; attention leaves what the CUDA kernel leaves) at reduced size, with the
 * shapes' ratios kept (ViT-H: head dim 80, MLP 4×, class token, pre-norm; GPT-2 medium: head dim 64, MLP 4×,
 * untied head), and compared byte for byte with what PyTorch's autograd saves for the same layers.
 *
 * <p><b>What PyTorch saves</b> (derivatives.yaml and the SDPA/flash kernels; M = tokens = B·N, C width, H heads):
 * <ul>
 *   <li>layer_norm (native_layer_norm): input, weight, bias, mean and rstd (f32 [M] each); the output is not saved;</li>
 *   <li>linear (addmm / mm): the input (for the weight gradient) and the weight (for the input gradient); not the
 *       bias, not the output;</li>
 *   <li>scaled_dot_product_attention, flash or cuDNN backend: q, k, v (views of the qkv projection's output, so the
 *       whole [M, 3C] storage), the output [M, C] (written as [B, N, H, D], so the head merge is a view), the
 *       log-sum-exp (f32 [B, H, N]) and the dropout RNG's seed and offset (two scalars);</li>
 *   <li>gelu: its input; residual add: nothing; dropout with p = 0: nothing (identity);</li>
 *   <li>cross_entropy on bf16 logits = log_softmax (saves its bf16 output) + nll_loss (saves that output, the
 *       targets and a scalar weight total); the caller's {@code out} keeps the logits alive through backward; the
 *       loss backward then holds logits, log-probabilities, their gradient (nll backward, zero-filled then
 *       scattered) and the logits' gradient at once: 4 × M·V·2 bytes;</li>
 *   <li>under bf16 autocast (f32 parameters): linear casts its input and weight to bf16 and saves the casts (the
 *       weight casts stay alive until backward uses them); layer_norm runs in f32 (so the residual stream is f32,
 *       4 bytes); the bias casts and the f32 layer-norm outputs are freed as soon as the cast has read them.</li>
 * </ul>
 * Per pre-norm block (timm's ViT block, GPT-2's block) that is, in bf16: x (norm1's input), norm1's output, qkv
 * [3C], the attention output, x1 (norm2's input), norm2's output, fc1's output [4C] (GELU's input) and GELU's output
 * [4C] (fc2's input): 16·M·C·2 bytes, plus 4·M·4 for the two norms' statistics and 4·B·H·N for the log-sum-exp;
 * under autocast x and x1 are f32 and the bf16 weight casts (12·C² · 2) are added: 36·M·C + 24·C² bytes.
 * Our regions are units: block i's region holds what the block allocates (its output x2 in place of its input x),
 * so the same count applies to each region.
 *
 * <p><b>Before this test's fixes</b> two things were held that PyTorch does not hold: every gradient between steps
 * (zero_grad kept the buffers: PyTorch's bench uses {@code zero_grad(set_to_none=True)}), i.e. P·2 bytes in bf16 and
 * P·4 under autocast at the forward's end; and a unit output that no node saved (ViT's patch convolution output,
 * the autocast GPT's f32 final-norm output) until the step's end.
 */
class StepPeakMemoryTest {
  // ViT-H/14 CLIP 336's ratios: head dim 80, 4× MLP, 14-pixel patches (56 px: 16 patches + the class token)
  static final ViTConfig VIT = new ViTConfig(56, 14, 3, 10, 160, 2, 2, 4.0, true, true, ViTConfig.Pool.TOKEN, 0, 0, 1e-5);
  static final int VIT_BATCH = 16;
  // GPT-2 medium's ratios: head dim 64, 4× MLP, untied head, biases
  static final GptConfig GPT = new GptConfig(512, 64, 2, 2, 128, 0, true);
  static final int GPT_BATCH = 8;
  /**
   * Cross-entropy chunks of 64 rows, an eighth of the logits: at GPT-2 medium's size the default 64 MiB chunk is
   * 1/12 of the 786 MiB logits, so this keeps the loss's share of the step in proportion.
   */
  static final long GPT_CHUNK_BYTES = 64L * 512 * 2;

  /** PyTorch's saved bytes for one bf16 pre-norm block (see the class comment). */
  static long torchBlockBf16(long tokens, long width, long batch, long heads, long seq) {
    return 16 * tokens * width * 2 + 4 * tokens * 4 + 4 * batch * heads * seq;
  }

  /** PyTorch's saved bytes for one pre-norm block under bf16 autocast with f32 parameters (see the class comment). */
  static long torchBlockAutocast(long tokens, long width, long batch, long heads, long seq) {
    return 36 * tokens * width + 24 * width * width + 4 * tokens * 4 + 4 * batch * heads * seq;
  }

  /** Parameters and AdamW's two moments, in the parameters' dtype: what is resident when a step starts (no gradients). */
  static long resident(UnitModel m) {
    long n = 0;
    for (Tensor p : m.parameters()) n += 3 * p.numel() * p.dtype().byteSize();
    return n;
  }

  static StepMemoryProbe.Result vitStep(CpuBackend cpu, UnitModel vit) {
    Tensor images = Tensor.empty(Shape.of(VIT_BATCH, 3, 56, 56), DType.BF16, cpu);
    cpu.kernels().uniform(images, 7, 0);
    long[] labels = new long[VIT_BATCH];
    for (int i = 0; i < labels.length; i++) labels[i] = i % 10;
    return StepMemoryProbe.step(cpu, vit, images, Tensor.of(labels, Shape.of(VIT_BATCH), DType.I64, cpu), Loss.CrossEntropyOptions.DEFAULT);
  }

  static StepMemoryProbe.Result gptStep(CpuBackend cpu, UnitModel gpt) {
    Random r = new Random(2);
    int tokens = GPT_BATCH * GPT.blockSize();
    long[] ids = new long[tokens], next = new long[tokens];
    for (int i = 0; i < tokens; i++) {
      ids[i] = r.nextInt(GPT.vocabSize());
      next[i] = r.nextInt(GPT.vocabSize());
    }
    return StepMemoryProbe.step(cpu, gpt, Tensor.of(ids, Shape.of(GPT_BATCH, GPT.blockSize()), DType.I64, cpu),
        Tensor.of(next, Shape.of(tokens), DType.I64, cpu), Loss.CrossEntropyOptions.DEFAULT.withChunkBytes(GPT_CHUNK_BYTES));
  }

  @Test void vitBlocksHoldExactlyWhatPyTorchSaves() {
    try (CpuBackend cpu = StepMemoryProbe.backend()) {
      var vit = new VisionTransformer(new ModuleContext(cpu, DType.BF16, 0), VIT);
      var r = vitStep(cpu, vit);
      int n = VIT.numPatches() + 1, c = VIT.embedDim();
      long m = (long) VIT_BATCH * n;
      long block = torchBlockBf16(m, c, VIT_BATCH, VIT.numHeads(), n);
      for (int i = 0; i < VIT.depth(); i++) assertEquals(block, r.atBackward("blocks." + i), "blocks." + i + "\n" + describe(r));
      assertEquals(resident(vit), r.atBackward(MemoryTrace.RESIDENT), "parameters and optimizer state only, no gradients\n" + describe(r));
      // the patch convolution's output is read by pos_embed's concatenation only (nothing saves it): gone
      assertEquals(0, r.atBackward("patch_embed"), describe(r));
      // pos_embed: x0 (saved by norm_pre); norm_pre: its output (block 0's input) and statistics; norm: its output
      // (the head saves a view of the class tokens, which keeps the storage, as PyTorch's x[:, 0]) and statistics;
      // head: the logits
      assertEquals(m * c * 2, r.atBackward("pos_embed"), describe(r));
      assertEquals(m * c * 2 + 2 * m * 4, r.atBackward("norm_pre"), describe(r));
      assertEquals(m * c * 2 + 2 * m * 4, r.atBackward("norm"), describe(r));
      assertEquals(0, r.atBackward("pool"), describe(r));
      assertEquals((long) VIT_BATCH * VIT.numClasses() * 2, r.atBackward("head"), describe(r));
    }
  }

  @Test void gptBlocksAndLossHoldExactlyWhatPyTorchSaves() {
    try (CpuBackend cpu = StepMemoryProbe.backend()) {
      var gpt = new Gpt(new ModuleContext(cpu, DType.BF16, 0), GPT);
      var r = gptStep(cpu, gpt);
      long t = GPT.blockSize(), m = GPT_BATCH * t, c = GPT.nEmbd(), v = GPT.vocabSize();
      long block = torchBlockBf16(m, c, GPT_BATCH, GPT.nHead(), t);
      for (int i = 0; i < GPT.nLayer(); i++) assertEquals(block, r.atBackward("transformer.h." + i), "h." + i + "\n" + describe(r));
      assertEquals(resident(gpt), r.atBackward(MemoryTrace.RESIDENT), describe(r));
      assertEquals(m * c * 2, r.atBackward("transformer.embed"), describe(r));
      assertEquals(m * c * 2 + 2 * m * 4, r.atBackward("transformer.ln_f"), describe(r));
      assertEquals(m * v * 2, r.atBackward("lm_head"), "the logits (PyTorch's caller holds them too)\n" + describe(r));
      assertEquals(lossPerToken(m), r.atBackward("loss"), "no log-probabilities are saved\n" + describe(r));
      assertPeakIsTheLossBackward(r, m * v * 2, m);
    }
  }

  @Test void autocastGptHoldsExactlyWhatPyTorchSaves() {
    try (CpuBackend cpu = StepMemoryProbe.backend()) {
      var gpt = new Gpt(new ModuleContext(cpu, DType.F32, 0), GPT);
      var r = gptStep(cpu, gpt);
      long t = GPT.blockSize(), m = GPT_BATCH * t, c = GPT.nEmbd(), v = GPT.vocabSize();
      long block = torchBlockAutocast(m, c, GPT_BATCH, GPT.nHead(), t);
      for (int i = 0; i < GPT.nLayer(); i++) assertEquals(block, r.atBackward("transformer.h." + i), "h." + i + "\n" + describe(r));
      assertEquals(resident(gpt), r.atBackward(MemoryTrace.RESIDENT), describe(r));
      assertEquals(m * c * 4, r.atBackward("transformer.embed"), "the f32 residual stream's start\n" + describe(r));
      // ln_f's f32 output is read only by lm_head's cast: gone; its statistics stay (saved)
      assertEquals(2 * m * 4, r.atBackward("transformer.ln_f"), describe(r));
      // lm_head: the bf16 casts of its input and weight (saved) and the bf16 logits
      assertEquals(m * c * 2 + v * c * 2 + m * v * 2, r.atBackward("lm_head"), describe(r));
      assertEquals(lossPerToken(m), r.atBackward("loss"), "no log-probabilities are saved\n" + describe(r));
      assertPeakIsTheLossBackward(r, m * v * 2, m);
    }
  }

  /**
   * Our cross-entropy's per-token values (no log-probabilities: {@code ChunkedCrossEntropy}): the valid-target
   * mask (bool), the clamped targets (i64, saved), the mask as bf16 (saved) and the loss per token (bf16): 13
   * bytes a token, plus an i64 zero and three bf16 scalars (the two sums and the mean). PyTorch's nll_loss saves the
   * caller's targets and one scalar but log_softmax saves the [M, V] log-probabilities.
   */
  static long lossPerToken(long m) { return 13 * m + 8 + 3 * 2; }

  /**
   * The step's peak is the loss backward: everything live when backward started plus the logits' gradient and
   * one chunk's log-probabilities and upstream gradient (PyTorch: plus the whole log-probabilities, saved, and
   * their whole gradient), give or take the per-token values the loss's backward rules allocate and release
   * (the upstream weights −g·valid, two bf16 [M]; the mean's and sums' scalars).
   */
  static void assertPeakIsTheLossBackward(StepMemoryProbe.Result r, long logits, long m) {
    long expected = r.atBackwardTotal() + logits + 2 * GPT_CHUNK_BYTES;
    long peak = r.trace().peakBytes();
    assertTrue(Math.abs(peak - expected) <= lossPerToken(m), "peak " + peak + " vs " + expected + "\n" + describe(r));
    assertTrue(r.trace().peakWhere().endsWith("backward cross_entropy"), r.trace().peakWhere());
  }

  private static String describe(StepMemoryProbe.Result r) {
    StringBuilder sb = new StringBuilder("live when backward started:\n");
    java.util.Map<String, Long> by = new java.util.TreeMap<>();
    for (var e : r.atBackward()) by.merge(e.where() + (e.savedBy().isEmpty() ? "" : " saved by " + e.savedBy()), e.bytes(), Long::sum);
    by.forEach((k, v) -> sb.append(String.format("  %,12d  %s%n", v, k)));
    return sb + "step " + r.trace().describe();
  }
}
