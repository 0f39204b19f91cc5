package io.colossal4j.nn;

import io.colossal4j.tensor.MemoryCategory;
import io.colossal4j.tensor.Rng;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;

/**
 * Parameter initialisers. Values are drawn on the host from an explicit {@link Rng} and copied to the
 * parameter's backend, so a model initialises identically on every device. Fan-in/fan-out follow
 * PyTorch: dim 1 × receptive field and dim 0 × receptive field.
 */
public final class Init {
  private Init() {}

  public static Tensor zeros(ModuleContext ctx, int... shape) { return constant(ctx, 0, shape); }

  public static Tensor ones(ModuleContext ctx, int... shape) { return constant(ctx, 1, shape); }

  public static Tensor constant(ModuleContext ctx, double v, int... shape) {
    Tensor t = Tensor.empty(Shape.of(shape), ctx.dtype(), ctx.backend(), MemoryCategory.PARAMETER);
    ctx.backend().kernels().fill(t, v);
    return t;
  }

  public static Tensor normal(ModuleContext ctx, double mean, double std, int... shape) {
    double[] d = new double[(int) Shape.of(shape).numel()];
    Rng r = ctx.initRng();
    for (int i = 0; i < d.length; i++) d[i] = mean + std * gaussian(r);
    return Tensor.of(d, Shape.of(shape), ctx.dtype(), ctx.backend(), MemoryCategory.PARAMETER);
  }

  /** Normal(0, std) truncated to [-2·std, 2·std] by rejection (timm's trunc_normal_(std=.02) usage). */
  public static Tensor truncNormal(ModuleContext ctx, double std, int... shape) {
    double[] d = new double[(int) Shape.of(shape).numel()];
    Rng r = ctx.initRng();
    for (int i = 0; i < d.length; i++) {
      double z;
      do { z = gaussian(r); } while (Math.abs(z) > 2);
      d[i] = std * z;
    }
    return Tensor.of(d, Shape.of(shape), ctx.dtype(), ctx.backend(), MemoryCategory.PARAMETER);
  }

  public static Tensor uniform(ModuleContext ctx, double lo, double hi, int... shape) {
    double[] d = new double[(int) Shape.of(shape).numel()];
    Rng r = ctx.initRng();
    for (int i = 0; i < d.length; i++) d[i] = lo + (hi - lo) * r.nextDouble();
    return Tensor.of(d, Shape.of(shape), ctx.dtype(), ctx.backend(), MemoryCategory.PARAMETER);
  }

  /** Xavier/Glorot uniform: U(-a, a), a = gain·sqrt(6 / (fan_in + fan_out)). */
  public static Tensor xavierUniform(ModuleContext ctx, double gain, int... shape) {
    double a = gain * Math.sqrt(6.0 / (fanIn(shape) + fanOut(shape)));
    return uniform(ctx, -a, a, shape);
  }

  /** Kaiming normal, fan_out mode, ReLU gain (torchvision's ResNet conv init). */
  public static Tensor kaimingNormalFanOut(ModuleContext ctx, int... shape) {
    return normal(ctx, 0, Math.sqrt(2.0 / fanOut(shape)), shape);
  }

  /** PyTorch's default Linear/Conv init: kaiming_uniform(a=√5), i.e. U(-1/√fan_in, 1/√fan_in). */
  public static Tensor torchDefault(ModuleContext ctx, int fanIn, int... shape) {
    double bound = 1 / Math.sqrt(Math.max(1, fanIn));
    return uniform(ctx, -bound, bound, shape);
  }

  public static int fanIn(int... shape) { return shape.length < 2 ? shape[0] : shape[1] * receptive(shape); }

  public static int fanOut(int... shape) { return shape[0] * receptive(shape); }

  private static int receptive(int[] shape) {
    int r = 1;
    for (int i = 2; i < shape.length; i++) r *= shape[i];
    return r;
  }

  private static double gaussian(Rng r) {
    // Box-Muller; u1 in (0, 1] so the log is finite
    double u1 = 1 - r.nextDouble(), u2 = r.nextDouble();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }
}
