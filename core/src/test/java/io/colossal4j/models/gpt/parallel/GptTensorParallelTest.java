package io.colossal4j.models.gpt.parallel;

import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.models.gpt.Gpt;
import io.colossal4j.models.gpt.GptConfig;
import io.colossal4j.nn.Module;
import io.colossal4j.nn.ModuleContext;
import io.colossal4j.ops.Loss;
import io.colossal4j.ops.Views;
import io.colossal4j.parallel.tensor.Equivalence;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.step.Batch;
import io.colossal4j.step.LossFunction;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * A small GPT (vocabulary 32, 8 positions, 2 layers, 4 heads, width 16) trained 4 steps with the Engine
 * (AdamW, 2 micro-batches, clipping at 0.5) on tp ranks, with vocab-parallel wte and LM head and the
 * vocab-parallel cross entropy, gives the single process's per-step losses, gradient norms and parameters.
 */
class GptTensorParallelTest {
  static final GptConfig CONFIG = new GptConfig(32, 8, 2, 4, 16, 0.0, true);

  record SmallGpt(DType dtype) implements Equivalence.Family {
    @Override public Module build(CpuBackend cpu) { return new Gpt(new ModuleContext(cpu, dtype, 13), CONFIG); }

    @Override public void parallelize(Module model, ProcessGroup tp) { GptTensorPlan.parallelize((Gpt) model, tp); }

    @Override public LossFunction loss(ProcessGroup tp) {
      if (tp != null) return (logits, targets) -> GptTensorPlan.loss(logits, targets, tp);
      return (logits, targets) -> Loss.crossEntropy(Views.reshape(logits, -1, CONFIG.vocabSize()), Views.reshape(targets, -1));
    }

    @Override public Batch batch(CpuBackend cpu, int step) {
      Random rnd = new Random(200 + step);
      Tensor ids = Tensor.of(rnd.longs(4 * 8, 0, 32).toArray(), Shape.of(4, 8), DType.I64, cpu);
      return new Batch(ids, Tensor.of(rnd.longs(4 * 8, 0, 32).toArray(), Shape.of(4, 8), DType.I64, cpu));
    }
  }

  /**
   * The key third of each c_attn bias has an analytically zero gradient (softmax's shift invariance), so
   * its trained value is rounding noise; compared with atol 1e-5 in f32 only (see the ViT test).
   */
  static final java.util.function.ToDoubleBiFunction<String, Integer> KEY_BIAS_NOISE =
      (name, i) -> name.endsWith("attn.c_attn.bias") && i / CONFIG.nEmbd() == 1 ? 1e-5 : 0;

  /**
   * f64 on the scalar reference backend, tolerance 1e-10 (as for the ViT: only the order of additions
   * differs). The vocab-parallel embedding is exact; the loss sums exp over vocabulary slices. Replicated
   * parameters (wpe, norms, row-parallel biases) are bit-identical on all ranks.
   */
  @Test void tp2AndTp4MatchSingleProcessInF64() {
    var single = Equivalence.single(new SmallGpt(DType.F64), CpuBackend::reference);
    for (int tp : new int[] {2, 4})
      Equivalence.assertEquivalent(single, Equivalence.tensorParallel(new SmallGpt(DType.F64), tp, CpuBackend::reference), 1e-10, 1e-10, true);
  }

  /** f32 on the fast backend: rtol 1e-5, atol 1e-6 and bit-identical replicas, as the ViT's f32 test. */
  @Test void tp2MatchesSingleProcessInF32OnFastKernels() {
    var single = Equivalence.single(new SmallGpt(DType.F32), () -> CpuBackend.create(1));
    Equivalence.assertEquivalent(single, Equivalence.tensorParallel(new SmallGpt(DType.F32), 2, () -> CpuBackend.create(1)), 1e-6, 1e-5, true, KEY_BIAS_NOISE);
  }
}
