package io.colossal4j.models;

import io.colossal4j.models.convnet.ConvNet;
import io.colossal4j.models.gpt.Gpt;
import io.colossal4j.models.gpt.GptConfig;
import io.colossal4j.models.resnet.ResNet;
import io.colossal4j.models.resnet.ResNetConfig;
import io.colossal4j.models.vit.ViTConfig;
import io.colossal4j.models.vit.VisionTransformer;
import io.colossal4j.nn.ModuleContext;
import io.colossal4j.nn.UnitModel;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.BiFunction;

/** The model zoo: names users put in configs, each with a description and a builder. */
public final class Zoo {
  private Zoo() {}

  /** One zoo entry. {@code kind} tells the trainer what the model consumes; {@code count} its parameter count without building it, where known. */
  public record Entry(String name, String description, InputKind kind, BiFunction<ModuleContext, ModelSpec, UnitModel> builder,
                      java.util.function.ToLongFunction<ModelSpec> count) {
    /** Parameters of the model the spec describes (built on the CPU when no formula is known). */
    public long parameterCount(ModelSpec spec) {
      if (count != null) return count.applyAsLong(spec);
      try (var cpu = io.colossal4j.backend.cpu.CpuBackend.create(1)) {
        return builder.apply(ModuleContext.of(cpu, 0), spec).parameterCount();
      }
    }
  }

  /** What a model's input is: images [B, C, H, W] or token ids [B, T]. */
  public enum InputKind { IMAGE, TOKENS }

  private static final Map<String, Entry> ENTRIES = new LinkedHashMap<>();
  private static final Map<String, String> ALIASES = new LinkedHashMap<>();

  static {
    vit("vit_tiny_28", "ViT for 28x28 grey images: 4x4 patches, dim 96, depth 4, 3 heads", ViTConfig.tiny28(10));
    vit("vit_convstem_28", "ViT for 28x28 grey images with a convolutional stem (16 tokens), dim 64, depth 4, 2 heads (the default job)", ViTConfig.convStem28(10));
    vit("vit_small_28", "ViT for 28x28 grey images: 4x4 patches, dim 64, depth 3, 2 heads, mean-pooled", ViTConfig.small28(10));
    vit("vit_mini_28", "ViT for 28x28 grey images: 7x7 patches, dim 64, depth 4, 2 heads (fast on a CPU)", ViTConfig.mini28(10));
    vit("vit_b16", "ViT-B/16 at 224 (timm vit_base_patch16_224)", ViTConfig.base16(1000));
    vit("vit_huge_clip_336", "ViT-H/14 CLIP at 336, 577 tokens (timm vit_huge_patch14_clip_336)", ViTConfig.hugeClip336(1000));
    add("resnet_18", "ResNet-18 (timm resnet18)", InputKind.IMAGE, (ctx, s) -> new ResNet(ctx, resnet(ResNetConfig.resnet18(classes(s, 1000)), s)));
    add("resnet_50", "ResNet-50 (timm resnet50)", InputKind.IMAGE, (ctx, s) -> new ResNet(ctx, resnet(ResNetConfig.resnet50(classes(s, 1000)), s)));
    add("convnet_small", "two conv blocks and two linear layers, for 28x28 or 32x32 images", InputKind.IMAGE,
        (ctx, s) -> new ConvNet(ctx, s.inChannels() > 0 ? s.inChannels() : 1, s.imageSize() > 0 ? s.imageSize() : 28, classes(s, 10), 32));
    gpt("gpt_small", "GPT-2 style decoder: 4 layers, 4 heads, width 128, vocab 256 (bytes), context 64", GptConfig.small());
    gpt("gpt_medium", "GPT-2 medium shape: 24 layers, 16 heads, width 1024, context 1024, untied head", GptConfig.medium());
    ALIASES.put("vit_base_patch16_224", "vit_b16");
    ALIASES.put("vit_huge_patch14_clip_336", "vit_huge_clip_336");
    ALIASES.put("resnet18", "resnet_18");
    ALIASES.put("resnet50", "resnet_50");
    ALIASES.put("gpt2_medium", "gpt_medium");
  }

  private static void add(String name, String description, InputKind kind, BiFunction<ModuleContext, ModelSpec, UnitModel> b) {
    ENTRIES.put(name, new Entry(name, description, kind, b, null));
  }

  private static void vit(String name, String description, ViTConfig preset) {
    ENTRIES.put(name, new Entry(name, description, InputKind.IMAGE, (ctx, s) -> new VisionTransformer(ctx, vitConfig(preset, s)),
        s -> vitConfig(preset, s).parameterCount()));
  }

  private static void gpt(String name, String description, GptConfig c) {
    ENTRIES.put(name, new Entry(name, description, InputKind.TOKENS, (ctx, s) -> new Gpt(ctx, c), s -> c.parameterCount()));
  }

  /** The preset with the spec's overrides applied. */
  public static ViTConfig vitConfig(ViTConfig p, ModelSpec s) {
    return new ViTConfig(s.imageSize() > 0 ? s.imageSize() : p.imageSize(), p.patchSize(), s.inChannels() > 0 ? s.inChannels() : p.inChannels(),
        classes(s, p.numClasses()), p.embedDim(), p.depth(), p.numHeads(), p.mlpRatio(), p.qkvBias(), p.preNorm(), p.pool(),
        s.dropRate() > 0 ? s.dropRate() : p.dropRate(), s.dropPathRate() > 0 ? s.dropPathRate() : p.dropPathRate(), p.eps(), p.embedding());
  }

  private static ResNetConfig resnet(ResNetConfig c, ModelSpec s) {
    boolean small = s.imageSize() > 0 && s.imageSize() <= 64;
    return c.withInput(s.inChannels() > 0 ? s.inChannels() : 3, small);
  }

  private static int classes(ModelSpec s, int preset) { return s.numClasses() > 0 ? s.numClasses() : preset; }

  public static Map<String, Entry> entries() { return java.util.Collections.unmodifiableMap(ENTRIES); }

  /** Every name a config may use: the zoo's keys and the timm names they answer to. */
  public static java.util.Set<String> names() {
    java.util.Set<String> all = new java.util.LinkedHashSet<>(ENTRIES.keySet());
    all.addAll(ALIASES.keySet());
    return all;
  }

  /** The entry for a zoo key ({@code vit_tiny_28}) or a timm name ({@code vit_base_patch16_224}), or an error listing the valid names. */
  public static Entry entry(String name) {
    Entry e = ENTRIES.get(ALIASES.getOrDefault(name, name));
    if (e == null) throw new IllegalArgumentException("unknown model '" + name + "'; valid: " + String.join(", ", ENTRIES.keySet())
        + " (or the timm names " + String.join(", ", ALIASES.keySet()) + ")");
    return e;
  }

  public static UnitModel build(ModuleContext ctx, ModelSpec spec) {
    return entry(spec.name()).builder().apply(ctx, spec);
  }
}
