package io.colossal4j.bench;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.convolutional.Conv2d;
import ai.djl.nn.core.Linear;
import ai.djl.nn.norm.BatchNorm;
import ai.djl.nn.norm.LayerNorm;
import ai.djl.training.GradientCollector;
import ai.djl.training.optimizer.Optimizer;
import ai.djl.training.tracker.Tracker;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.models.ModelSpec;
import io.colossal4j.models.Zoo;
import io.colossal4j.models.vit.ViTConfig;
import io.colossal4j.nn.ModuleContext;
import io.colossal4j.nn.UnitModel;
import io.colossal4j.ops.Loss;
import io.colossal4j.optim.Adam;
import io.colossal4j.optim.LrSchedule;
import io.colossal4j.optim.ParamGroup;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.step.Batch;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

/**
 * {@code ./colossal bench train-step}: one training step (forward, cross entropy, backward, AdamW) of the default
 * job's model, {@code vit_convstem_28} (conv stem with batch norm, 4 pre-norm blocks of dim 64 with 2 heads, class
 * token), on a batch of 64 Fashion-MNIST-sized images, ours against the same network written with PyTorch's ops
 * through DJL (the same layer shapes, the same number of threads), in one process, side by side.
 */
final class TrainStepBench {
  private TrainStepBench() {}

  static final int BATCH = 64;
  /** Minimum warm-up of each side, seconds (see the call to Measure.sideBySide). */
  static final double WARM_SECONDS = 15;

  static void run(int threads) {
    System.setProperty("ai.djl.pytorch.num_threads", Integer.toString(threads));
    System.setProperty("ai.djl.pytorch.num_interop_threads", "1");
    ViTConfig c = ViTConfig.convStem28(10);
    Random rnd = new Random(1);
    float[] x = new float[BATCH * 784];
    for (int i = 0; i < x.length; i++) x[i] = (float) rnd.nextGaussian();
    long[] y = rnd.longs(BATCH, 0, 10).toArray();
    try (CpuBackend cpu = CpuBackend.create(threads); NDManager nd = NDManager.newBaseManager(ai.djl.Device.cpu(), "PyTorch")) {
      UnitModel model = Zoo.build(ModuleContext.of(cpu, 0), ModelSpec.of("vit_convstem_28", 10));
      var engine = new io.colossal4j.train.Engine(model, Adam.adamW(ParamGroup.single(model.namedParameters(), 0.05)),
          (o, t) -> Loss.crossEntropy(o, t), new LrSchedule.Constant(1e-3));
      Batch batch = new Batch(Tensor.of(x, io.colossal4j.tensor.Shape.of(BATCH, 1, 28, 28), cpu),
          Tensor.of(y, io.colossal4j.tensor.Shape.of(BATCH), DType.I64, cpu));
      TorchVit peer = new TorchVit(nd, c, model.namedParameters());
      NDArray tx = nd.create(x, new Shape(BATCH, 1, 28, 28)), ty = nd.create(y);
      // fairness check: both sides start from the same parameters, so their first losses must agree (f32 rounding)
      double peerLoss = peer.loss(tx, ty), ourLoss = engine.trainStep(batch).loss();
      System.out.printf("first-step loss: ours %.6f, PyTorch %.6f (same model and batch: %s)%n", ourLoss, peerLoss,
          Math.abs(ourLoss - peerLoss) <= 1e-4 * Math.max(1, Math.abs(peerLoss)) ? "agree" : "DIFFER");
      // both sides warm up for at least WARM_SECONDS: our step's Vector API kernels reach their compiled speed only
      // after a few hundred steps (the JIT's tiers), PyTorch's native kernels from the first; 2 s (about 60 of our
      // steps) measured a half-compiled step
      Measure.Timing t = Measure.sideBySide(WARM_SECONDS, Measure.ROUNDS, () -> engine.trainStep(batch), () -> peer.step(tx, ty));
      System.out.printf("train step vit_convstem_28 batch %d: ours %.1f samples/s, PyTorch %.1f samples/s, peer=PyTorch ratio=%.2f%n",
          BATCH, BATCH / t.median(0), BATCH / t.median(1), t.ratio(0, 1));
    }
  }

  /** The same network in PyTorch ops: parameters copied from ours, so both sides compute the same function. */
  static final class TorchVit {
    private final Map<String, NDArray> p = new LinkedHashMap<>();
    private final NDArray rm1, rv1, rm2, rv2;
    private final ViTConfig c;
    private final Optimizer opt = Optimizer.adamW().optLearningRateTracker(Tracker.fixed(1e-3f)).optWeightDecays(0.05f).build();

    TorchVit(NDManager nd, ViTConfig c, Map<String, Tensor> ours) {
      this.c = c;
      ours.forEach((k, v) -> {
        NDArray a = nd.create(v.toFloatArray(), new Shape(java.util.Arrays.stream(v.shape().toArray()).asLongStream().toArray()));
        a.setRequiresGradient(true);
        p.put(k, a);
      });
      rm1 = nd.zeros(new Shape(p.get("patch_embed.bn1.weight").size()));
      rv1 = nd.ones(rm1.getShape());
      rm2 = nd.zeros(new Shape(p.get("patch_embed.bn2.weight").size()));
      rv2 = nd.ones(rm2.getShape());
    }

    /** The cross-entropy loss at the current parameters, without a step. */
    double loss(NDArray x, NDArray y) {
      try (NDScope scope = new NDScope()) {
        scope.suppressNotUsedWarning();
        return lossOf(forward(x), y, x).getFloat();
      }
    }

    private static NDArray lossOf(NDArray logits, NDArray y, NDArray x) {
      return logits.logSoftmax(1).mul(y.oneHot(10)).sum().neg().div(x.getShape().get(0));
    }

    void step(NDArray x, NDArray y) {
      try (NDScope scope = new NDScope()) {
        scope.suppressNotUsedWarning();
        try (GradientCollector gc = Engine.getEngine("PyTorch").newGradientCollector()) {
          gc.backward(lossOf(forward(x), y, x));
        }
      }
      // the optimizer's state must outlive the step, so its update runs outside the scope
      p.forEach((k, a) -> {
        try (NDArray g = a.getGradient()) {
          opt.update(k, a, g);
        }
      });
    }

    private NDArray forward(NDArray x) {
      Shape s2 = new Shape(2, 2), p1 = new Shape(1, 1), d1 = new Shape(1, 1);
      NDArray h = Conv2d.conv2d(x, p.get("patch_embed.conv1.weight"), null, s2, p1, d1, 1).singletonOrThrow();
      h = Activation.relu(BatchNorm.batchNorm(h, rm1, rv1, p.get("patch_embed.bn1.weight"), p.get("patch_embed.bn1.bias"), 1, 0.1f, 1e-5f, true).singletonOrThrow());
      h = Conv2d.conv2d(h, p.get("patch_embed.conv2.weight"), null, s2, p1, d1, 1).singletonOrThrow();
      h = Activation.relu(BatchNorm.batchNorm(h, rm2, rv2, p.get("patch_embed.bn2.weight"), p.get("patch_embed.bn2.bias"), 1, 0.1f, 1e-5f, true).singletonOrThrow());
      h = Conv2d.conv2d(h, p.get("patch_embed.proj.weight"), p.get("patch_embed.proj.bias"), s2, p1, d1, 1).singletonOrThrow();
      long b = h.getShape().get(0), d = c.embedDim();
      NDArray tok = h.reshape(b, d, -1).transpose(0, 2, 1);
      NDArray cls = p.get("cls_token").broadcast(b, 1, d);
      NDArray z = NDArrays.concat(new NDList(cls, tok), 1).add(p.get("pos_embed"));
      for (int i = 0; i < c.depth(); i++) z = block(z, "blocks." + i + ".");
      z = LayerNorm.layerNorm(z, new Shape(d), p.get("norm.weight"), p.get("norm.bias"), (float) c.eps()).singletonOrThrow();
      NDArray pooled = z.get(":, 0, :");
      return Linear.linear(pooled, p.get("head.weight"), p.get("head.bias")).singletonOrThrow();
    }

    private NDArray block(NDArray x, String n) {
      long b = x.getShape().get(0), t = x.getShape().get(1), d = c.embedDim(), heads = c.numHeads(), hd = d / heads;
      NDArray h = LayerNorm.layerNorm(x, new Shape(d), p.get(n + "norm1.weight"), p.get(n + "norm1.bias"), (float) c.eps()).singletonOrThrow();
      NDArray qkv = Linear.linear(h, p.get(n + "attn.qkv.weight"), p.get(n + "attn.qkv.bias")).singletonOrThrow()
          .reshape(b, t, 3, heads, hd).transpose(2, 0, 3, 1, 4);
      NDArray q = qkv.get("0"), k = qkv.get("1"), v = qkv.get("2");
      NDArray att = q.matMul(k.transpose(0, 1, 3, 2)).mul(1.0 / Math.sqrt(hd)).softmax(-1);
      NDArray o = att.matMul(v).transpose(0, 2, 1, 3).reshape(b, t, d);
      x = x.add(Linear.linear(o, p.get(n + "attn.proj.weight"), p.get(n + "attn.proj.bias")).singletonOrThrow());
      h = LayerNorm.layerNorm(x, new Shape(d), p.get(n + "norm2.weight"), p.get(n + "norm2.bias"), (float) c.eps()).singletonOrThrow();
      h = Activation.gelu(Linear.linear(h, p.get(n + "mlp.fc1.weight"), p.get(n + "mlp.fc1.bias")).singletonOrThrow());
      return x.add(Linear.linear(h, p.get(n + "mlp.fc2.weight"), p.get(n + "mlp.fc2.bias")).singletonOrThrow());
    }
  }
}
