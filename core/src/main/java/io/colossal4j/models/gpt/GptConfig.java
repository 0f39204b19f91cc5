package io.colossal4j.models.gpt;

/** GPT-2 shape (Radford et al. 2019), nanoGPT's parameter names; the LM head is untied from the embedding. */
public record GptConfig(int vocabSize, int blockSize, int nLayer, int nHead, int nEmbd, double dropout, boolean bias) {
  public GptConfig {
    if (nEmbd % nHead != 0) throw new IllegalArgumentException("GPT n_embd " + nEmbd + " is not divisible by n_head " + nHead);
    if (vocabSize < 2 || blockSize < 1 || nLayer < 1) throw new IllegalArgumentException("GPT needs vocab >= 2, block >= 1, layers >= 1");
  }

  /** Parameter count from the shape alone. */
  public long parameterCount() {
    long d = nEmbd, b = bias ? 1 : 0;
    long layer = 4 * d + 12 * d * d + b * 9 * d;
    return (long) vocabSize * d + (long) blockSize * d + nLayer * layer + 2 * d + (long) vocabSize * d;
  }

  /** A small GPT for tests and CPU runs. */
  public static GptConfig small() { return new GptConfig(256, 64, 4, 4, 128, 0.0, true); }

  /** GPT-2 medium: 24 layers, 16 heads, 1024 wide (355M parameters tied; 406M with our untied head). */
  public static GptConfig medium() { return new GptConfig(50304, 1024, 24, 16, 1024, 0.0, true); }
}
