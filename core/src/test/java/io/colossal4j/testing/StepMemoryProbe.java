package io.colossal4j.testing;

import io.colossal4j.autograd.Autocast;
import io.colossal4j.autograd.Autograd;
import io.colossal4j.backend.MemoryTrace;
import io.colossal4j.backend.StepLedger;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.backend.cpu.ScalarKernels;
import io.colossal4j.nn.UnitModel;
import io.colossal4j.ops.Loss;
import io.colossal4j.ops.Views;
import io.colossal4j.optim.Adam;
import io.colossal4j.optim.Optimizer;
import io.colossal4j.optim.ParamGroup;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Storage;
import io.colossal4j.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Runs the training step of {@code colossal bench gpu} (forward, cross-entropy, backward, AdamW, zero-grad to none; f32
 * parameters under bf16 autocast when the model is f32) on the CPU and traces the memory of one steady-state
 * step ({@link MemoryTrace}): the step's peak, what is live at it and who saved it. The backend ({@link #backend})
 * has {@link OffDeviceAttention} as its fused attention, so attention leaves behind what the CUDA kernel does (its
 * output and log-sum-exp) in every dtype.
 */
public final class StepMemoryProbe {
  private StepMemoryProbe() {}

  /**
   * A CPU backend for memory traces: the scalar reference kernels (no Vector API code to warm up: these steps are
   * small, and a cold JIT dominates them), {@link OffDeviceAttention} as the fused attention (memory-wise the CUDA
   * kernel: any dtype, strided outputs), and matrix products by the f32 SIMD GEMM of a private backend, on f32
   * copies held there (outside any step, so untraced): the traced step allocates exactly what it allocates on any
   * backend.
   */
  public static CpuBackend backend() {
    OffDeviceAttention attention = new OffDeviceAttention();
    CpuBackend scratch = CpuBackend.create(1);
    return CpuBackend.withKernels("cpu-scalar+off-device-attention", 1, p -> new ScalarKernels() {
      @Override public Optional<io.colossal4j.backend.FusedAttention> fusedAttention() { return Optional.of(attention); }

      @Override public void matmul(Tensor a, Tensor b, Tensor out, boolean accumulate) {
        Tensor af = f32(a), bf = f32(b), of = accumulate ? f32(out) : Tensor.empty(out.shape(), DType.F32, scratch);
        scratch.kernels().matmul(af, bf, of, accumulate);
        copy(of, out);
        for (Tensor t : new Tensor[] {af, bf, of}) t.storage().release();
      }

      private Tensor f32(Tensor t) {
        Tensor c = Tensor.empty(t.shape(), DType.F32, scratch);
        copy(t, c);
        return c;
      }
    });
  }

  /**
   * What one traced step gives: the trace (its peak over the whole step), what was live when backward started
   * (after the loss: what autograd saved, the resident parameters and optimizer state), and the step's loss.
   */
  public record Result(MemoryTrace trace, List<MemoryTrace.Entry> atBackward, double loss) {
    /** Bytes live when backward started, allocated in {@code region}. */
    public long atBackward(String region) {
      long n = 0;
      for (var e : atBackward) if (e.region().equals(region)) n += e.bytes();
      return n;
    }

    /** Bytes live when backward started, in total. */
    public long atBackwardTotal() {
      long n = 0;
      for (var e : atBackward) n += e.bytes();
      return n;
    }
  }

  /**
   * Creates the optimizer state, then traces one step; the loss (cross-entropy with {@code loss}'s options) runs in
   * region "loss", the update in "optimizer".
   */
  public static Result step(CpuBackend cpu, UnitModel model, Tensor input, Tensor targets, Loss.CrossEntropyOptions loss) {
    model.train(true);
    Optimizer opt = Adam.adamW(ParamGroup.single(model.namedParameters(), 0.1));
    boolean amp = model.parameters().getFirst().dtype() == DType.F32;
    // the optimizer's state exists from its first step on: one step on zero gradients creates it (without a
    // forward pass, which would double the test's time); then nothing is resident but parameters and state
    for (Tensor p : model.parameters()) p.setOwnedGrad(Tensor.zeros(p.shape(), p.dtype(), cpu));
    opt.step(1e-4);
    opt.releaseGrads();
    List<Storage> resident = new ArrayList<>();
    for (Tensor p : model.parameters()) {
      resident.add(p.storage());
      if (p.grad() != null) resident.add(p.grad().storage());
    }
    for (Tensor s : opt.stateDict().values()) resident.add(s.storage());
    MemoryTrace trace = new MemoryTrace(resident);
    List<MemoryTrace.Entry> atBackward = new ArrayList<>();
    double value = run(cpu, model, opt, input, targets, amp, loss, trace, atBackward);
    return new Result(trace, atBackward, value);
  }

  private static double run(CpuBackend cpu, UnitModel model, Optimizer opt, Tensor input, Tensor targets, boolean amp, Loss.CrossEntropyOptions lossOptions, MemoryTrace trace,
                            List<MemoryTrace.Entry> atBackward) {
    try (var scope = cpu.openStep()) {
      StepLedger ledger = cpu.activeStep();
      ledger.attach(trace);
      Tensor logits = amp ? Autocast.call(DType.BF16, () -> model.forward(input)) : model.forward(input);
      String region = ledger.enterRegion("loss");
      if (logits.rank() > 2) logits = Views.reshape(logits, -1, logits.size(-1));
      Tensor loss = Loss.crossEntropy(logits, targets, lossOptions);
      ledger.enterRegion(region);
      if (trace != null) atBackward.addAll(trace.liveNow());
      Autograd.backward(loss);
      double value = loss.item();
      ledger.enterRegion("optimizer");
      opt.step(1e-4);
      opt.releaseGrads();
      return value;
    }
  }
}
