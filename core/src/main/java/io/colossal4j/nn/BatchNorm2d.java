package io.colossal4j.nn;

import io.colossal4j.ops.Norm;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;

/** Batch norm over NCHW: batch statistics and running-stat updates in training, running statistics in eval. */
public final class BatchNorm2d extends Module {
  private final Tensor weight;
  private final Tensor bias;
  private final Norm.RunningStats running;
  private final Tensor batchesTracked;
  private final double momentum;
  private final double eps;

  public BatchNorm2d(ModuleContext ctx, int channels, double momentum, double eps) {
    this.weight = parameter("weight", Init.ones(ctx, channels));
    this.bias = parameter("bias", Init.zeros(ctx, channels));
    this.running = new Norm.RunningStats(buffer("running_mean", Init.zeros(ctx, channels)), buffer("running_var", Init.ones(ctx, channels)));
    this.batchesTracked = buffer("num_batches_tracked", Tensor.zeros(Shape.scalar(), DType.I64, ctx.backend()));
    this.momentum = momentum;
    this.eps = eps;
  }

  public BatchNorm2d(ModuleContext ctx, int channels) { this(ctx, channels, 0.1, 1e-5); }

  /** Zero-initialises the scale (the last BN of a residual branch, torchvision's zero_init_residual). */
  public BatchNorm2d zeroInit() {
    weight.backend().kernels().fill(weight, 0);
    return this;
  }

  @Override public Tensor forward(Tensor x) {
    if (!isTraining()) return Norm.batchNormEval(x, weight, bias, running, eps);
    batchesTracked.backend().kernels().binaryScalar(io.colossal4j.backend.BinaryOp.ADD, batchesTracked, 1, batchesTracked);
    return Norm.batchNormTrain(x, weight, bias, running, momentum, eps);
  }
}
