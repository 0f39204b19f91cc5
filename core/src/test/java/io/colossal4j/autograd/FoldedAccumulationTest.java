package io.colossal4j.autograd;

import static io.colossal4j.testing.GradCheck.check;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.colossal4j.backend.Backend;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.models.gpt.Gpt;
import io.colossal4j.models.gpt.GptConfig;
import io.colossal4j.models.vit.Block;
import io.colossal4j.nn.Module;
import io.colossal4j.nn.ModuleContext;
import io.colossal4j.ops.Arith;
import io.colossal4j.ops.Norm;
import io.colossal4j.ops.Reduce;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;

/**
 * Folded gradient accumulation ({@link Autograd#recordFolding}): a rule that adds the gradient already pending for
 * one of its inputs itself. Checks the engine hands the pending gradient over exactly when it should (a non-leaf
 * with a pending contribution, fed through that input only), that the folded pass equals the separate one bit for
 * bit (the sums keep their order and rounding) on a pre-norm ViT block and a GPT-2 block in f32 and bf16 on both
 * CPU backends, and that layer norm's gradients stay right with a fold (finite differences).
 */
class FoldedAccumulationTest {
  private static final Backend CPU = CpuBackend.reference();

  /** y = 3·x through a folding rule that records the pending gradient it was given. */
  private static Tensor triple(Tensor x, List<Tensor> seen) {
    Tensor y = GradMode.noGrad(() -> Arith.mulScalar(x, 3));
    return Autograd.recordFolding("triple", y, Autograd.saving(), 0, (g, pending) -> {
      seen.add(pending);
      Tensor own = Arith.mulScalar(g, 3);
      return new Tensor[] {pending == null ? own : Arith.add(pending, own)};
    }, x);
  }

  @Test void pendingGradientIsFoldedOnlyIntoANonLeafThatHasOne() {
    Tensor leaf = Tensor.of(new double[] {1, 2}, Shape.of(2), DType.F64, CPU).requiresGrad(true);
    List<Tensor> seen = new ArrayList<>();
    // h feeds the later add (its gradient arrives first) and the earlier triple: triple gets it to fold
    Tensor h = Arith.mulScalar(leaf, 2);
    Tensor loss = Reduce.sum(Arith.add(Arith.mulScalar(triple(h, seen), 5), Arith.mulScalar(h, 7)));
    Autograd.backward(loss);
    assertEquals(1, seen.size());
    assertNotNull(seen.getFirst(), "h has a pending gradient (7) when triple runs");
    assertArrayEquals(new double[] {7, 7}, seen.getFirst().toDoubleArray(), 0);
    // dL/dleaf = 2·(7 + 15)
    assertArrayEquals(new double[] {44, 44}, leaf.grad().toDoubleArray(), 0);

    // a leaf input: nothing pending to fold (leaves accumulate into .grad)
    seen.clear();
    Tensor leaf2 = Tensor.of(new double[] {1, 2}, Shape.of(2), DType.F64, CPU).requiresGrad(true);
    Autograd.backward(Reduce.sum(Arith.add(triple(leaf2, seen), leaf2)));
    assertNull(seen.getFirst());
    assertArrayEquals(new double[] {4, 4}, leaf2.grad().toDoubleArray(), 0);

    // the only consumer: nothing pending
    seen.clear();
    Tensor leaf3 = Tensor.of(new double[] {1, 2}, Shape.of(2), DType.F64, CPU).requiresGrad(true);
    Autograd.backward(Reduce.sum(triple(Arith.mulScalar(leaf3, 2), seen)));
    assertNull(seen.getFirst());
    assertArrayEquals(new double[] {6, 6}, leaf3.grad().toDoubleArray(), 0);

    // SEPARATE: never handed over, same result
    seen.clear();
    Tensor leaf4 = Tensor.of(new double[] {1, 2}, Shape.of(2), DType.F64, CPU).requiresGrad(true);
    Tensor h4 = Arith.mulScalar(leaf4, 2);
    Tensor loss4 = Reduce.sum(Arith.add(Arith.mulScalar(triple(h4, seen), 5), Arith.mulScalar(h4, 7)));
    Autograd.backward(loss4, Tensor.full(loss4.shape(), DType.F64, CPU, 1), false, Autograd.Accumulation.SEPARATE);
    assertNull(seen.getFirst());
    assertArrayEquals(new double[] {44, 44}, leaf4.grad().toDoubleArray(), 0);
  }

  @Test void aFoldInputThatAlsoFeedsAnotherInputIsNotFolded() {
    Tensor leaf = Tensor.of(new double[] {1, 2}, Shape.of(2), DType.F64, CPU).requiresGrad(true);
    Tensor h = Arith.mulScalar(leaf, 2);
    List<Tensor> seen = new ArrayList<>();
    Tensor y = GradMode.noGrad(() -> Arith.mul(h, h));
    Autograd.recordFolding("square", y, Autograd.saving(h), 0, (g, pending) -> {
      seen.add(pending);
      Tensor own = Arith.mul(g, h);
      return new Tensor[] {pending == null ? own : Arith.add(pending, own), own};
    }, h, h);
    Autograd.backward(Reduce.sum(Arith.add(y, h)));
    assertNull(seen.getFirst(), "h is both inputs: folding into one would reorder the sums");
    // d/dh (h² + h) = 2h + 1 = {5, 9}, times 2
    assertArrayEquals(new double[] {10, 18}, leaf.grad().toDoubleArray(), 0);
  }

  @Test void aRuleThatWritesThePendingGradientIsAnError() {
    Tensor leaf = Tensor.of(new double[] {1, 2}, Shape.of(2), DType.F64, CPU).requiresGrad(true);
    Tensor h = Arith.mulScalar(leaf, 2);
    Tensor y = GradMode.noGrad(() -> Arith.mulScalar(h, 1));
    Autograd.recordFolding("bad", y, Autograd.saving(), 0, (g, pending) -> new Tensor[] {pending != null ? pending : g}, h);
    Tensor loss = Reduce.sum(Arith.add(y, h));
    TensorException e = assertThrows(TensorException.class, () -> Autograd.backward(loss));
    assertEquals("backward of bad folded the pending gradient of input 0 into its own storage instead of a new tensor", e.getMessage());
    assertThrows(TensorException.class, () -> Autograd.recordFolding("bad", y, Autograd.saving(), 1, (g, p) -> null, h));
  }

  /** Layer norm with the residual's gradient folded in: finite differences (f64, GradCheck's tolerance). */
  @Test void layerNormGradientsWithAFoldedResidual() {
    // h = 1.5·x is a non-leaf read by the layer norm and (later) by the residual add, as in a pre-norm block
    check(CPU, a -> {
      Tensor h = Arith.mulScalar(a[0], 1.5);
      return Arith.add(h, Arith.mul(Norm.layerNorm(h, a[1], a[2], 1e-5), a[3]));
    }, Shape.of(3, 5), Shape.of(5), Shape.of(5), Shape.of(3, 5));
    check(CPU, a -> {
      Tensor h = Arith.mulScalar(a[0], 1.5);
      return Arith.add(Norm.layerNorm(h, null, null, 1e-5), h);
    }, Shape.of(2, 3, 4));
  }

  /** Block gradients (parameters and input) with folding and without, per backend and dtype: equal bit for bit. */
  @Test void preNormBlocksGiveTheSameGradientsFoldedAndSeparate() {
    for (Backend b : new Backend[] {CPU, CpuBackend.create(2)})
      for (DType t : new DType[] {DType.F32, DType.BF16}) {
        String what = b.name() + " " + t;
        // each pass gets a fresh module from the same seed (the same weights, no gradients yet)
        compareBlock("vit " + what, () -> new Block(new ModuleContext(b, t, 5), 32, 4, 64, true, 0, 0, 1e-6), Shape.of(2, 9, 32), t, b);
        compareBlock("gpt " + what, () -> new Gpt(new ModuleContext(b, t, 6), new GptConfig(40, 16, 1, 4, 32, 0.0, true)).blocks().getFirst(),
            Shape.of(2, 16, 32), t, b);
      }
  }

  private static void compareBlock(String what, Supplier<Module> block, Shape shape, DType t, Backend b) {
    Random rnd = new Random(11);
    double[] x = rnd.doubles(shape.numel(), -1, 1).toArray(), g = rnd.doubles(shape.numel(), -1, 1).toArray();
    List<double[]> folded = gradients(block.get(), x, g, shape, t, b, Autograd.Accumulation.FOLDED);
    List<double[]> separate = gradients(block.get(), x, g, shape, t, b, Autograd.Accumulation.SEPARATE);
    assertEquals(separate.size(), folded.size());
    for (int i = 0; i < folded.size(); i++) assertArrayEquals(separate.get(i), folded.get(i), 0.0, what + ": gradient " + i);
  }

  /**
   * The block's input gradient then its parameters' gradients, for input x and output gradient g. The input goes
   * through a scale first so that it is a non-leaf (the residual stream inside a model), where folding applies.
   */
  private static List<double[]> gradients(Module block, double[] x, double[] g, Shape shape, DType t, Backend b,
                                          Autograd.Accumulation accumulation) {
    Tensor leaf = Tensor.of(x, shape, t, b).requiresGrad(true);
    Tensor in = Arith.mulScalar(leaf, 1.0);
    Tensor out = block.forward(in);
    Autograd.backward(out, Tensor.of(g, shape, t, b), false, accumulation);
    List<double[]> grads = new ArrayList<>();
    grads.add(leaf.grad().toDoubleArray());
    for (Tensor p : block.parameters()) grads.add(p.grad() == null ? new double[0] : p.grad().toDoubleArray());
    return grads;
  }
}
