package io.colossal4j.ops;

import static io.colossal4j.testing.GradCheck.assertClose;

import io.colossal4j.autograd.Autograd;
import io.colossal4j.backend.Backend;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.ops.Attention.Mask;
import io.colossal4j.ops.Attention.Options;
import io.colossal4j.ops.Loss.CrossEntropyOptions;
import io.colossal4j.ops.Loss.Reduction;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import org.junit.jupiter.api.Test;

/**
 * Cross entropy and attention against values printed by PyTorch 2.11 (CPU, float64, math attention
 * backend) with scripts/golden/attention_loss_reference.py. The inputs are closed-form sequences
 * seq(n, a, b, s)[i] = s·sin(a·i + b), built identically here. Tolerance 1e-12: both sides compute in f64,
 * only the order of a few dozen roundings differs (values are of order 1, so the error is ~1e-15·terms).
 * This pins down PyTorch's conventions: ignored targets leave the mean's denominator, label smoothing
 * mixes in the mean over classes, a fully masked attention row is zeros, causal masks are top-left aligned.
 */
class PyTorchReferenceTest {
  static final Backend CPU = CpuBackend.reference();
  static final double TOL = 1e-12;

  static Tensor seq(Shape shape, double a, double b, double s) {
    double[] v = new double[(int) shape.numel()];
    for (int i = 0; i < v.length; i++) v[i] = s * Math.sin(a * i + b);
    return Tensor.of(v, shape, DType.F64, CPU);
  }

  @Test void crossEntropyWithSmoothingAndIgnoreIndex() {
    Tensor logits = seq(Shape.of(2, 4, 3), 1.3, 0.5, 2.0).requiresGrad(true);
    Tensor targets = Tensor.of(new long[] {1, 7, 0, 3, 3, 7}, Shape.of(2, 3), DType.I64, CPU);
    CrossEntropyOptions o = new CrossEntropyOptions(Reduction.MEAN, 0.3, 7);
    assertClose(CE_NONE, Loss.crossEntropy(logits, targets, o.withReduction(Reduction.NONE)).toDoubleArray(), TOL, TOL, "none");
    assertClose(CE_SUM, Loss.crossEntropy(logits, targets, o.withReduction(Reduction.SUM)).toDoubleArray(), TOL, TOL, "sum");
    Tensor mean = Loss.crossEntropy(logits, targets, o);
    assertClose(CE_MEAN, mean.toDoubleArray(), TOL, TOL, "mean");
    Autograd.backward(mean);
    assertClose(CE_MEAN_GRAD, logits.grad().toDoubleArray(), TOL, TOL, "d mean / d logits");
    Tensor probs = Softmax.softmax(seq(Shape.of(2, 4, 3), 0.9, 0.1, 1), 1);
    assertClose(CE_SOFT_MEAN, Loss.crossEntropySoft(logits.detach(), probs, Reduction.MEAN, 0.1).toDoubleArray(), TOL, TOL, "soft");
  }

  @Test void attentionVariants() {
    Tensor q = seq(Shape.of(2, 2, 3, 4), 0.7, 0.2, 1), k = seq(Shape.of(2, 2, 5, 4), 1.1, 0.3, 1), v = seq(Shape.of(2, 2, 5, 3), 0.5, 0.9, 1);
    Tensor allowed = Tensor.of(new double[] {1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 0, 1, 1}, Shape.of(3, 5), DType.BOOL, CPU);
    Tensor bias = seq(Shape.of(2, 3, 5), 0.3, 0.4, 1);
    assertClose(SDPA_PLAIN, Attention.scaledDotProductAttention(q, k, v).toDoubleArray(), TOL, TOL, "plain");
    assertClose(SDPA_BOOL_MASK, Attention.scaledDotProductAttention(q, k, v, Options.DEFAULT.withMask(new Mask.Allowed(allowed))).toDoubleArray(),
        TOL, TOL, "bool mask with a fully masked row");
    assertClose(SDPA_CAUSAL, Attention.scaledDotProductAttention(q, k, v, Options.DEFAULT.withCausal(true)).toDoubleArray(), TOL, TOL, "causal");
    assertClose(SDPA_ADDITIVE_SCALE, Attention.scaledDotProductAttention(q, k, v,
        Options.DEFAULT.withMask(new Mask.Additive(bias)).withScale(0.6)).toDoubleArray(), TOL, TOL, "additive mask, scale 0.6");
    Tensor logScale = Tensor.of(new double[] {0.5, 5.0}, Shape.of(2, 1, 1), DType.F64, CPU);
    assertClose(SDPA_COSINE, Attention.scaledDotProductAttention(q, k, v, Options.DEFAULT.withCosine(logScale).withBias(bias)).toDoubleArray(),
        TOL, TOL, "Swin V2 cosine attention");
  }

  // ---------------------------------------------------------------- printed by the script (PyTorch 2.11.0+cu130)
  static final double[] CE_NONE = {3.553881919670959, 0.0, 2.148647582007044, 1.5859376996679782, 2.809589819886451, 0.0};
  static final double[] CE_SUM = {10.098057021232433};
  static final double[] CE_MEAN = {2.5245142553081084};
  static final double[] CE_MEAN_GRAD = {0.051208910469598065, 0.0, -0.16597727922001498, -0.18975176564898547, 0.0, 0.07634402553508915, 0.1441930358989193, 0.0, -0.015259585697269871, -0.005650180719531924, 0.0, 0.10489283938219568, -0.00625531599521051, -0.01200362008736882, 0.0, 0.14780683625466146, 0.15701888962861452, 0.0, -0.014684067373520666, 0.03744012095739218, 0.0, -0.12686745288593032, -0.18245539049863782, 0.0};
  static final double[] CE_SOFT_MEAN = {2.2022908750326446};
  static final double[] SDPA_PLAIN = {0.3460086661624525, 0.4477101800724388, 0.43979662746228937, -0.2517659169441236, -0.25030810654508384, -0.18756614186340237, 0.4361889710586161, 0.44209758698674106, 0.33976529492813606, 0.1784919366548633, -0.03352502685137554, -0.23733389455821075, 0.23233894841582725, 0.32689746125238756, 0.341420074626831, -0.002872996779180903, -0.16718859140264725, -0.29057058794477497, -0.26569172856415196, -0.2297931544539453, -0.13763320181697514, 0.1633714527973697, -0.04585846750440545, -0.2438606355911354, -0.06694107070953505, 0.04703331298976418, 0.14949230132503283, 0.2515460801825099, 0.24451269852841995, 0.1776140805960883, -0.4591009126853607, -0.40464996892321703, -0.2511266001076323, 0.19450149065383293, 0.08955466925504629, -0.03731825850565591};
  static final double[] SDPA_BOOL_MASK = {0.05609474407296411, 0.25967165994733044, 0.39967189710084366, 0.0, 0.0, 0.0, 0.5276847770530315, 0.5555520037644764, 0.44740072440088685, 0.11287293193056117, 0.16952094036465357, 0.18466431034799435, 0.0, 0.0, 0.0, 0.20103205626255177, -0.06685564652789935, -0.31837475537613386, 0.16931779078564937, 0.3571594613084845, 0.4575560393313208, 0.0, 0.0, 0.0, -0.1534049034709547, -0.3036677113603032, -0.37958207272696787, 0.5094374024036756, 0.4145755518748405, 0.2182111474191996, 0.0, 0.0, 0.0, -0.22540435098292189, -0.40298516226275777, -0.4819011512217951};
  static final double[] SDPA_CAUSAL = {0.7833269096274834, 0.9854497299884601, 0.9463000876874145, 0.7390138284313537, 0.6788921945568442, 0.45255407426179173, 0.521667607058079, 0.27383664027503024, -0.04103908643405213, 0.8545989080882804, 0.5010208564578846, 0.024775425453357765, 0.6155060975765589, 0.2588827458354547, -0.16112413093757388, -0.4186140338553296, -0.6047472319554049, -0.642817216375742, -0.19085858137418937, -0.6381066823479474, -0.9291240127343684, -0.379121134957477, -0.679208463320922, -0.8130018716401203, -0.2834163589933739, -0.019422323184147883, 0.2493269747177591, -0.9869155581206487, -0.9434014817545555, -0.6689098203780243, -0.5537518488451282, -0.25179537428386534, 0.11180938957276859, 0.24213485194892703, 0.33423661818827516, 0.34450560338555464};
  static final double[] SDPA_ADDITIVE_SCALE = {0.3131329518724356, 0.4539065923891594, 0.4835480685431798, -0.23498873651432053, -0.27709339466044974, -0.25135592582371463, 0.5223412754368395, 0.47297362022839845, 0.3078055272563647, 0.3686836862493444, 0.1505377379785126, -0.10446509873661491, 0.21201104945869456, 0.4061748098425363, 0.5008928109352013, -0.15191973819129512, -0.35067332234181436, -0.4635698470233806, -0.23507468080139599, -0.19950712267719756, -0.11509326286746785, 0.057950298087016336, -0.18428686918961107, -0.3814041836593669, -0.1451232758081019, -0.0016052439390998874, 0.14230580763103312, 0.3095357226818126, 0.26574349115183726, 0.15688798485962918, -0.5098222044633562, -0.5051155000979384, -0.3767389047896148, 0.22369968277973612, 0.14118860786823256, 0.024109637625741517};
  static final double[] SDPA_COSINE = {0.3797952041848421, 0.5418768786962319, 0.5712881946859538, -0.39440714329037607, -0.4878787598250238, -0.46190064058790825, 0.5759990943793944, 0.5296511514916686, 0.3536261344890945, -0.4411061812409894, -0.8099247005382366, -0.9804454060322877, 0.32747443913769303, 0.7403758899524486, 0.9720075013949759, -0.45753589377532006, -0.8278264690856523, -0.9954362533063762, -0.27383876904900584, -0.1987537137027263, -0.07500681746392274, 0.05304151289960859, -0.24124803746463863, -0.47647165443809414, -0.11854412420177342, 0.11934373038297513, 0.3280120775118638, 0.9542850944926969, 0.9807632477451529, 0.7671163526355301, -0.902554608209117, -0.9984950306618071, -0.8499690458768728, 0.9542850944880235, 0.9807632477363711, 0.76711635262479};
}
