package io.colossal4j.backend.cpu.simd;

import static io.colossal4j.testing.GradCheck.assertClose;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.autograd.Autograd;
import io.colossal4j.backend.Backend;
import io.colossal4j.backend.FusedAttention;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.ops.Arith;
import io.colossal4j.ops.Attention;
import io.colossal4j.ops.Attention.Options;
import io.colossal4j.ops.Reduce;
import io.colossal4j.ops.Views;
import io.colossal4j.tensor.Rng;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.Random;
import java.util.function.Function;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/**
 * The CPU fused attention kernel against its scalar twin: the same call on the reference backend, which
 * composes matmul, softmax and matmul in double arithmetic over f32 storage. Forward and all three
 * gradients (of a weighted sum of the output, so every output element gets a distinct gradient) are
 * compared. Tolerance: inputs in [-1, 1], at most 40 keys and head dims of 32, so every f32 dot product,
 * exponential and row sum carries a relative error of at most ~50·2^-24 ≈ 3e-6; 2e-5 absolute plus 2e-5
 * relative leaves a margin of several times that and still catches any wrong index or missing term.
 */
class AttentionKernelTest {
  static final CpuBackend FAST = CpuBackend.create(2);
  static final Backend REF = CpuBackend.reference();

  @AfterAll static void close() { FAST.close(); }

  /** q, k, v leaves on a backend from one host array each; {@code view} makes the operands the kernel sees. */
  private record Case(Shape[] shapes, Function<Tensor[], Tensor[]> view, Options options) {}

  private static void compare(Case c, long seed) {
    compare(c, seed, qkv -> Attention.scaledDotProductAttention(qkv[0], qkv[1], qkv[2], c.options()));
  }

  private static void compare(Case c, long seed, Function<Tensor[], Tensor> attention) {
    Random rnd = new Random(seed);
    float[][] data = new float[c.shapes().length][];
    for (int i = 0; i < data.length; i++) {
      data[i] = new float[Math.toIntExact(c.shapes()[i].numel())];
      for (int j = 0; j < data[i].length; j++) data[i][j] = (float) (2 * rnd.nextDouble() - 1);
    }
    Tensor[] fast = run(FAST, c, data, attention), ref = run(REF, c, data, attention);
    for (int i = 0; i < fast.length; i++)
      assertClose(ref[i].toDoubleArray(), fast[i].toDoubleArray(), 2e-5, 2e-5, (i == 0 ? "output" : "gradient of input " + (i - 1)));
  }

  /** The output, then the gradients of every leaf, of sum(out * weights) with fixed weights. */
  private static Tensor[] run(Backend b, Case c, float[][] data, Function<Tensor[], Tensor> attention) {
    Tensor[] leaves = new Tensor[data.length];
    for (int i = 0; i < data.length; i++) leaves[i] = Tensor.of(data[i], c.shapes()[i], b).requiresGrad(true);
    Tensor[] qkv = c.view().apply(leaves);
    Tensor out = attention.apply(qkv);
    float[] w = new float[Math.toIntExact(out.numel())];
    for (int i = 0; i < w.length; i++) w[i] = (float) Math.sin(0.37 * i);
    Autograd.backward(Reduce.sum(Arith.mul(out, Tensor.of(w, out.shape(), b))));
    Tensor[] result = new Tensor[leaves.length + 1];
    result[0] = out;
    for (int i = 0; i < leaves.length; i++) result[i + 1] = leaves[i].grad();
    return result;
  }

  @Test void vitLayoutFromOnePackedProjection() {
    // the ViT's attention: q, k, v are strided views into one [B, N, 3, H, D] projection
    int b = 3, n = 17, h = 2, d = 32;
    compare(new Case(new Shape[] {Shape.of(b, n, 3 * h * d)}, t -> {
      Tensor p = Views.permute(Views.reshape(t[0], b, n, 3, h, d), 2, 0, 3, 1, 4);
      return new Tensor[] {Views.select(p, 0, 0), Views.select(p, 0, 1), Views.select(p, 0, 2)};
    }, Options.DEFAULT), 1);
  }

  @Test void packedSelfAttentionWritesStraightIntoThePackedLayout() {
    // on the fast backend the kernel writes o and gqkv in place; the reference composes select/permute/reshape
    for (boolean causal : new boolean[] {false, true}) {
      int b = 3, n = 17, h = 2, d = 32;
      Options o = Options.DEFAULT.withCausal(causal);
      compare(new Case(new Shape[] {Shape.of(b, n, 3 * h * d)}, t -> new Tensor[] {t[0]}, o), 6, t -> io.colossal4j.ops.PackedAttention.selfAttention(t[0], h, o));
      // a qkv whose rows are strided (a narrowed view of a wider projection) takes the same path
      compare(new Case(new Shape[] {Shape.of(b, n, 3 * h * d + 5)}, t -> new Tensor[] {Views.narrow(t[0], 2, 5, 3 * h * d)}, o), 7,
          t -> io.colossal4j.ops.PackedAttention.selfAttention(t[0], h, o));
    }
  }

  @Test void causalOddHeadDimAndWiderValues() {
    compare(new Case(new Shape[] {Shape.of(2, 3, 9, 5), Shape.of(2, 3, 11, 5), Shape.of(2, 3, 11, 19)},
        t -> t, Options.DEFAULT.withCausal(true).withScale(0.7)), 2);
  }

  @Test void broadcastBatchDimsAndSingleKey() {
    compare(new Case(new Shape[] {Shape.of(4, 2, 6, 16), Shape.of(1, 2, 40, 16), Shape.of(2, 40, 16)}, t -> t, Options.DEFAULT), 3);
    compare(new Case(new Shape[] {Shape.of(2, 3, 8), Shape.of(2, 1, 8), Shape.of(2, 1, 3)}, t -> t, Options.DEFAULT), 4);
  }

  @Test void theKernelTakesOnlyWhatItImplements() {
    FusedAttention fa = FAST.kernels().fusedAttention().orElseThrow();
    Tensor q = Tensor.zeros(Shape.of(2, 5, 8), io.colossal4j.tensor.DType.F32, FAST);
    Tensor longK = Tensor.zeros(Shape.of(2, AttentionKernel.MAX_KEYS + 1, 8), io.colossal4j.tensor.DType.F32, FAST);
    var plain = new FusedAttention.Spec(0.5, false, 0, 0, 0);
    assertTrue(fa.supports(q, q, q, null, plain));
    assertFalse(fa.supports(q, q, q, q, plain), "bias goes to the composite");
    assertFalse(fa.supports(q, q, q, null, new FusedAttention.Spec(0.5, false, 0.1, 1, 0)), "dropout goes to the composite");
    assertFalse(fa.supports(q, longK, longK, null, plain), "long sequences go to the composite");
    assertFalse(fa.supports(Views.transpose(q, 1, 2), q, q, null, plain), "a strided head dim goes to the composite");
    // and a call the kernel declines still gives the composite's answer
    compare(new Case(new Shape[] {Shape.of(2, 4, 6), Shape.of(2, 5, 6), Shape.of(2, 5, 6)}, t -> t,
        Options.DEFAULT.withDropout(0.0, new Rng(1)).withBias(null)), 5);
  }
}
