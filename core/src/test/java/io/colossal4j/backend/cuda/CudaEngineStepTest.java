package io.colossal4j.backend.cuda;

import static io.colossal4j.backend.cuda.CudaTestSupport.gpu;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.backend.Backend;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.models.ModelSpec;
import io.colossal4j.models.Zoo;
import io.colossal4j.nn.ModuleContext;
import io.colossal4j.nn.UnitModel;
import io.colossal4j.ops.Loss;
import io.colossal4j.optim.Adam;
import io.colossal4j.optim.LrSchedule;
import io.colossal4j.optim.ParamGroup;
import io.colossal4j.step.Batch;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.train.Engine;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The Engine's training step on CUDA: three AdamW steps of a small ViT (conv patch embedding, pre-norm blocks with
 * fused attention, class token) from the same initial parameters and batch as on the CPU, f32. Between steps the GPU
 * releases its gradients (PyTorch's set_to_none; the next backward installs fresh ones) while the CPU keeps them
 * zeroed lazily; the losses of every step agree. Steps queued with {@link Engine#trainStepAsync} and read a step
 * late give the same figures bit for bit and make the host wait for the GPU only when a result is read.
 */
class CudaEngineStepTest {
  @Test void gpuStepsMatchTheCpuAndReleaseGradients() {
    CudaBackend g = gpu();
    try (CpuBackend cpu = CpuBackend.create(2)) {
      double[] onCpu = steps(cpu), onGpu = steps(g);
      // f32 on both sides, different summation orders (cuBLASLt/cuDNN against our Vector API kernels): the loss of
      // order 2.3 agrees to ~1e-6 relative at the first step; three AdamW steps at lr 1e-3 move parameters by ~3e-3,
      // and gradients that differ in their last bits move them alike, so 1e-4 relative stays far above the noise
      // while a wrong gradient (or a stale one added in) shifts the later losses by far more
      for (int s = 0; s < onCpu.length; s++)
        assertEquals(onCpu[s], onGpu[s], 1e-4 * Math.abs(onCpu[s]), "loss of step " + s + ": cpu " + onCpu[s] + ", gpu " + onGpu[s]);
    }
  }

  @Test void stepsReadLateMatchAndQueueWithoutWaiting() {
    CudaBackend g = gpu();
    Engine now = engine(g), later = engine(g);
    Batch batch = batch(g);
    Engine.StepResult[] read = new Engine.StepResult[4], late = new Engine.StepResult[4];
    for (int s = 0; s < read.length; s++) read[s] = now.trainStep(batch);
    Engine.PendingStep previous = null;
    for (int s = 0; s < late.length; s++) {
      long waits = g.hostWaits();
      Engine.PendingStep step = later.trainStepAsync(batch);
      // after the first step (GEMM and cuDNN plans are timed then, which waits) nothing in a step waits for the GPU
      if (s > 0) assertEquals(waits, g.hostWaits(), "step " + s + " waited for the GPU while it was queued");
      if (previous != null) late[s - 1] = previous.result();
      previous = step;
    }
    late[late.length - 1] = previous.result();
    assertEquals(late[late.length - 1], previous.result(), "a result read twice is the same");
    for (int s = 0; s < read.length; s++) {
      // same parameters, batch and kernels in the same order: the same bits
      assertEquals(read[s].loss(), late[s].loss(), 0.0, "loss of step " + s);
      assertEquals(read[s].gradNorm(), late[s].gradNorm(), 0.0, "gradient norm of step " + s);
      assertEquals(read[s].correct(), late[s].correct(), "correct count of step " + s);
      assertEquals(16, late[s].samples(), "samples of step " + s);
      assertTrue(late[s].gradNorm() > 0, "a gradient norm was formed");
    }
  }

  @Test void readLaterReturnsTheValuesAsQueued() {
    CudaBackend g = gpu();
    Tensor a = Tensor.of(new double[] {1.5, -2.25}, Shape.of(2), DType.F64, g);
    Tensor b = Tensor.of(new float[] {3.75f}, Shape.of(1), g);
    Tensor t = Tensor.of(new float[] {1, 2, 3, 4, 5, 6}, Shape.of(2, 3), g);
    Tensor column = t.view(Shape.of(2), new long[] {3}, 1);   // non-contiguous: 2, 5
    long waits = g.hostWaits();
    Backend.HostValues v = g.readLater(a, b, column);
    assertEquals(waits, g.hostWaits(), "readLater does not wait");
    g.kernels().fill(a, 99);   // queued after the read: not seen by it
    a.storage().release();
    assertEquals(java.util.List.of(1.5, -2.25, 3.75, 2.0, 5.0), java.util.Arrays.stream(v.get()).boxed().toList());
  }

  @Test void readLaterReportsADeviceFaultQueuedBeforeIt() {
    CudaBackend g = gpu();
    Tensor weight = Tensor.of(new float[] {1, 2, 3, 4, 5, 6}, Shape.of(3, 2), g);
    Tensor ids = Tensor.of(new long[] {0, 7}, Shape.of(2), DType.I64, g);   // 7 is out of range (3 rows)
    Tensor rows = io.colossal4j.autograd.GradMode.noGrad(() -> io.colossal4j.ops.Indexing.embedding(weight, ids));
    Backend.HostValues v = g.readLater(io.colossal4j.ops.Reduce.sum(rows));
    io.colossal4j.tensor.TensorException e = org.junit.jupiter.api.Assertions.assertThrows(io.colossal4j.tensor.TensorException.class, v::get);
    assertTrue(e.getMessage().contains("index 7"), e.getMessage());
    g.synchronize();   // reported once: the words were cleared
  }

  private static Engine engine(Backend b) {
    UnitModel model = Zoo.build(ModuleContext.of(b, 0), ModelSpec.of("vit_mini_28", 10));
    return new Engine(model, Adam.adamW(ParamGroup.single(model.namedParameters(), 0.05)), (o, t) -> Loss.crossEntropy(o, t),
        new LrSchedule.Constant(1e-3));
  }

  private static Batch batch(Backend b) {
    Random rnd = new Random(5);
    float[] x = new float[16 * 784];
    for (int i = 0; i < x.length; i++) x[i] = (float) rnd.nextGaussian();
    long[] y = rnd.longs(16, 0, 10).toArray();
    return new Batch(Tensor.of(x, Shape.of(16, 1, 28, 28), b), Tensor.of(y, Shape.of(16), DType.I64, b));
  }

  private static double[] steps(Backend b) {
    UnitModel model = Zoo.build(ModuleContext.of(b, 0), ModelSpec.of("vit_mini_28", 10));
    Engine engine = new Engine(model, Adam.adamW(ParamGroup.single(model.namedParameters(), 0.05)), (o, t) -> Loss.crossEntropy(o, t),
        new LrSchedule.Constant(1e-3));
    Random rnd = new Random(5);
    float[] x = new float[16 * 784];
    for (int i = 0; i < x.length; i++) x[i] = (float) rnd.nextGaussian();
    long[] y = rnd.longs(16, 0, 10).toArray();
    Batch batch = new Batch(Tensor.of(x, Shape.of(16, 1, 28, 28), b), Tensor.of(y, Shape.of(16), DType.I64, b));
    double[] losses = new double[3];
    for (int s = 0; s < losses.length; s++) {
      losses[s] = engine.trainStep(batch).loss();
      boolean cpu = b.device().kind() == io.colossal4j.tensor.Device.Kind.CPU;
      for (var p : model.namedParameters().entrySet()) {
        if (cpu) assertTrue(p.getValue().hasGrad(), p.getKey() + ": the CPU keeps its gradient buffer (zeroed lazily)");
        else assertFalse(p.getValue().hasGrad(), p.getKey() + ": released after the step on the GPU");
      }
    }
    return losses;
  }
}
