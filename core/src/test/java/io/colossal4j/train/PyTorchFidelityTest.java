package io.colossal4j.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.colossal4j.autograd.Autograd;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.models.resnet.ResNet;
import io.colossal4j.models.resnet.ResNetConfig;
import io.colossal4j.models.vit.ViTConfig;
import io.colossal4j.models.vit.VisionTransformer;
import io.colossal4j.nn.ModuleContext;
import io.colossal4j.nn.UnitModel;
import io.colossal4j.ops.Arith;
import io.colossal4j.ops.Loss;
import io.colossal4j.optim.Adam;
import io.colossal4j.optim.Optimizer;
import io.colossal4j.optim.ParamGroup;
import io.colossal4j.optim.Sgd;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.MemoryCategory;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.train.checkpoint.Safetensors;
import io.colossal4j.train.json.Json;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * 20 training steps of a small timm ViT and a small timm ResNet, with SGD (momentum) and AdamW, against golden
 * files written by PyTorch 2.11 + timm (scripts/golden/make_golden.py): same initial weights, same batches,
 * per-step losses and final weights. Both sides compute in float64 from the same float32-stored values, so the
 * only differences are summation orders (~1e-16 per op, grown over 20 steps): losses must agree to 1e-9
 * relative; final weights are stored as float32, so they agree to float32 rounding (rtol 2e-7, atol 1e-7).
 */
class PyTorchFidelityTest {
  static final CpuBackend CPU = CpuBackend.create(2);
  static final Path DIR = Path.of("src/test/resources/golden");

  @ParameterizedTest
  @ValueSource(strings = {"vit_sgd", "vit_adamw", "resnet_sgd", "resnet_adamw"})
  void matchesPyTorch(String name) {
    Path file = DIR.resolve(name + ".safetensors");
    assumeTrue(Files.exists(file), "golden file " + file + " not present (written by scripts/golden/make_golden.py on a host with PyTorch)");
    var golden = Safetensors.read(file, CPU, MemoryCategory.TEMPORARY);
    Map<String, Tensor> t = golden.tensors();
    Map<String, String> meta = golden.metadata();
    ModuleContext ctx = new ModuleContext(CPU, DType.F64, 0);
    UnitModel model = meta.get("model").equals("vit") ? vit(ctx, meta) : resnet(ctx, t);
    model.loadStateDict(prefixed(t, "init."), true);
    Optimizer opt = optimizer(meta, model);
    double lr = ((Number) hyper(meta).get("lr")).doubleValue();
    double[] losses = t.get("losses").toDoubleArray();
    int steps = Integer.parseInt(meta.get("steps"));
    model.train(true);
    for (int s = 0; s < steps; s++) {
      Tensor x = Arith.cast(t.get("x." + s), DType.F64);
      Tensor loss = Loss.crossEntropy(model.forward(x), t.get("y." + s));
      Autograd.backward(loss);
      opt.step(lr);
      opt.zeroGrad();
      assertEquals(losses[s], loss.item(), 1e-9 * Math.abs(losses[s]), name + " loss at step " + s);
    }
    Map<String, Tensor> expected = prefixed(t, "final.");
    model.stateDict().forEach((k, v) -> io.colossal4j.testing.GradCheck.assertClose(
        expected.get(k).toDoubleArray(), v.toDoubleArray(), 1e-7, 2e-7, name + " final " + k));
  }

  private static Map<String, Object> hyper(Map<String, String> meta) {
    @SuppressWarnings("unchecked") Map<String, Object> h = (Map<String, Object>) Json.parse(meta.get("hyper"), "golden hyper-parameters");
    return h;
  }

  private static Optimizer optimizer(Map<String, String> meta, UnitModel model) {
    Map<String, Object> h = hyper(meta);
    double wd = ((Number) h.get("weight_decay")).doubleValue();
    List<ParamGroup> groups = ParamGroup.single(model.namedParameters(), wd);
    if (meta.get("optimizer").equals("sgd")) return new Sgd(groups, ((Number) h.get("momentum")).doubleValue(), 0, false);
    @SuppressWarnings("unchecked") List<Number> betas = (List<Number>) h.get("betas");
    return new Adam(groups, betas.get(0).doubleValue(), betas.get(1).doubleValue(), ((Number) h.get("eps")).doubleValue(), true);
  }

  private static UnitModel vit(ModuleContext ctx, Map<String, String> meta) {
    @SuppressWarnings("unchecked") Map<String, Object> c = (Map<String, Object>) Json.parse(meta.get("config"), "golden config");
    int dim = num(c, "embed_dim");
    var cfg = new ViTConfig(num(c, "img_size"), num(c, "patch_size"), num(c, "in_chans"), num(c, "num_classes"), dim, num(c, "depth"),
        num(c, "num_heads"), ((Number) c.get("mlp_ratio")).doubleValue(), true, false, ViTConfig.Pool.TOKEN, 0, 0, 1e-6);
    return new VisionTransformer(ctx, cfg);
  }

  /** Reads the ResNet's widths from the golden state dict (timm's stem is 64 wide whatever the stage widths). */
  private static UnitModel resnet(ModuleContext ctx, Map<String, Tensor> t) {
    int stem = t.get("init.conv1.weight").size(0);
    List<Integer> widths = List.of(1, 2, 3, 4).stream().map(i -> t.get("init.layer" + i + ".0.conv1.weight").size(0)).toList();
    int classes = t.get("init.fc.weight").size(0), in = t.get("init.conv1.weight").size(1);
    return new ResNet(ctx, new ResNetConfig(false, List.of(1, 1, 1, 1), widths, stem, in, classes, false));
  }

  private static int num(Map<String, Object> c, String k) { return ((Number) c.get(k)).intValue(); }

  private static Map<String, Tensor> prefixed(Map<String, Tensor> t, String prefix) {
    Map<String, Tensor> out = new LinkedHashMap<>();
    t.forEach((k, v) -> { if (k.startsWith(prefix)) out.put(k.substring(prefix.length()), v.dtype() == DType.F32 ? Arith.cast(v, DType.F64) : v); });
    return out;
  }
}
