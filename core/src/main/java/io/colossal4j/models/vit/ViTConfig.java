package io.colossal4j.models.vit;

/**
 * The shape of a Vision Transformer, in timm's terms. {@code preNorm} adds CLIP's norm_pre after the
 * position embedding; {@code pool} is "token" (class token) or "avg" (mean of patch tokens).
 */
public record ViTConfig(int imageSize, int patchSize, int inChannels, int numClasses, int embedDim, int depth, int numHeads,
                        double mlpRatio, boolean qkvBias, boolean preNorm, Pool pool, double dropRate, double dropPathRate, double eps,
                        Embedding embedding) {
  /** How images become tokens: one patch-sized convolution (timm's), or a convolutional stem ({@link ConvStem}). */
  public enum Embedding { PATCH, CONV_STEM }

  public ViTConfig(int imageSize, int patchSize, int inChannels, int numClasses, int embedDim, int depth, int numHeads,
                   double mlpRatio, boolean qkvBias, boolean preNorm, Pool pool, double dropRate, double dropPathRate, double eps) {
    this(imageSize, patchSize, inChannels, numClasses, embedDim, depth, numHeads, mlpRatio, qkvBias, preNorm, pool, dropRate, dropPathRate, eps, Embedding.PATCH);
  }

  /** How the token sequence becomes one vector for the head. */
  public enum Pool { TOKEN, AVG }

  public ViTConfig {
    if (embedding == Embedding.PATCH && imageSize % patchSize != 0)
      throw new IllegalArgumentException("ViT image size " + imageSize + " is not divisible by patch size " + patchSize);
    if (embedDim % numHeads != 0)
      throw new IllegalArgumentException("ViT embed dim " + embedDim + " is not divisible by " + numHeads + " heads");
    if (depth < 1 || numClasses < 1) throw new IllegalArgumentException("ViT needs depth >= 1 and num_classes >= 1, got depth=" + depth + " classes=" + numClasses);
  }

  public int numPatches() {
    return embedding == Embedding.CONV_STEM ? ConvStem.tokens(imageSize) : (imageSize / patchSize) * (imageSize / patchSize);
  }

  public int headDim() { return embedDim / numHeads; }

  public int mlpHidden() { return (int) (embedDim * mlpRatio); }

  /** A small ViT for 28×28 single-channel images (Fashion-MNIST): 4×4 patches, 49 tokens + class token. */
  public static ViTConfig tiny28(int numClasses) {
    return new ViTConfig(28, 4, 1, numClasses, 96, 4, 3, 2.0, true, false, Pool.TOKEN, 0.0, 0.0, 1e-6);
  }

  /** A smaller ViT for 28×28 grey images: 7×7 patches (16 tokens + class token), dim 64, depth 4, 2 heads. */
  public static ViTConfig mini28(int numClasses) {
    return new ViTConfig(28, 7, 1, numClasses, 64, 4, 2, 2.0, true, false, Pool.TOKEN, 0.0, 0.0, 1e-6);
  }

  /** A ViT for 28×28 grey images with a convolutional stem (16 tokens), dim 64, depth 4, 2 heads: learns fast on two CPU cores. */
  public static ViTConfig convStem28(int numClasses) {
    return new ViTConfig(28, 8, 1, numClasses, 64, 4, 2, 2.0, true, false, Pool.TOKEN, 0.0, 0.0, 1e-6, Embedding.CONV_STEM);
  }

  /** A small ViT for 28×28 grey images sized for two CPU cores: 4×4 patches (49 tokens), dim 64, depth 3, 2 heads, mean-pooled. */
  public static ViTConfig small28(int numClasses) {
    return new ViTConfig(28, 4, 1, numClasses, 64, 3, 2, 2.0, true, false, Pool.AVG, 0.0, 0.0, 1e-6);
  }

  /** vit_base_patch16_224: 86M parameters. */
  public static ViTConfig base16(int numClasses) {
    return new ViTConfig(224, 16, 3, numClasses, 768, 12, 12, 4.0, true, false, Pool.TOKEN, 0.0, 0.0, 1e-6);
  }

  /** vit_huge_patch14_clip_336: 632M parameters, 577 tokens, pre-norm as CLIP. */
  public static ViTConfig hugeClip336(int numClasses) {
    return new ViTConfig(336, 14, 3, numClasses, 1280, 32, 16, 4.0, true, true, Pool.TOKEN, 0.0, 0.0, 1e-5);
  }

  /** Parameter count from the shape alone (no allocation): the zoo listing uses it for models too big to build here. */
  public long parameterCount() {
    long d = embedDim, h = mlpHidden(), n = numPatches();
    long w = Math.max(8, embedDim / 2);
    long patch = embedding == Embedding.CONV_STEM
        ? (w / 2) * inChannels * 9 + 2 * (w / 2) + w * (w / 2) * 9 + 2 * w + d * w * 9 + d   // conv1, bn1, conv2, bn2, proj
        : d * inChannels * patchSize * patchSize + (preNorm ? 0 : d);
    long block = 4 * d + 3 * d * d + (qkvBias ? 3 * d : 0) + d * d + d + d * h + h + h * d + d;
    return patch + d + (n + 1) * d + (preNorm ? 2 * d : 0) + depth * block + 2 * d + d * numClasses + numClasses;
  }

  public ViTConfig withClasses(int n) {
    return new ViTConfig(imageSize, patchSize, inChannels, n, embedDim, depth, numHeads, mlpRatio, qkvBias, preNorm, pool, dropRate, dropPathRate, eps, embedding);
  }
}
