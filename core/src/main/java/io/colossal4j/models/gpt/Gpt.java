package io.colossal4j.models.gpt;

import io.colossal4j.nn.Dropout;
import io.colossal4j.nn.Embedding;
import io.colossal4j.nn.Init;
import io.colossal4j.nn.Layers;
import io.colossal4j.nn.LayerNorm;
import io.colossal4j.nn.Linear;
import io.colossal4j.nn.Module;
import io.colossal4j.nn.ModuleContext;
import io.colossal4j.nn.Sequential;
import io.colossal4j.nn.Unit;
import io.colossal4j.nn.UnitModel;
import io.colossal4j.ops.Arith;
import io.colossal4j.ops.Views;
import io.colossal4j.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;

/**
 * A GPT-2-style decoder. Input: token ids [B, T] (i64); output: logits [B, T, vocab]. Units:
 * transformer.embed (wte + wpe + dropout), transformer.h.0 … , transformer.ln_f, lm_head.
 */
public final class Gpt extends UnitModel {
  private final GptConfig config;
  private final List<Unit> units = new ArrayList<>();

  /** The "transformer" container, holding nanoGPT's names (wte, wpe, h, ln_f). */
  private static final class Trunk extends Module {
    @Override public Tensor forward(Tensor x) { throw new UnsupportedOperationException("the GPT trunk runs through its units"); }

    <M extends Module> M add(String name, M m) { return child(name, m); }

    <M extends Module> M addInline(String name, M m) { return inlineChild(name, m); }
  }

  /** Token + position embedding; wte is looked up through its module, so a plan may replace it (vocab-parallel). */
  private static final class Embed extends Module {
    private final Embedding wpe;
    private final Dropout drop;
    private final int blockSize;

    Embed(ModuleContext ctx, GptConfig c) {
      child("wte", new Embedding(ctx, c.vocabSize(), c.nEmbd(), 0.02));
      this.wpe = child("wpe", new Embedding(ctx, c.blockSize(), c.nEmbd(), 0.02));
      this.drop = child("drop", new Dropout(ctx, c.dropout()));
      this.blockSize = c.blockSize();
    }

    @Override public Tensor forward(Tensor ids) {
      int t = ids.size(1);
      if (t > blockSize) throw new IllegalArgumentException("sequence length " + t + " exceeds the block size " + blockSize);
      // positions 0..t-1 are the first t rows of wpe: a view (the same values and gradient as looking them up,
      // without an index tensor copied from the host, which would wait for the device every step)
      return drop.forward(Arith.add(children().get("wte").forward(ids), Views.narrow(wpe.weight(), 0, 0, t)));
    }
  }

  public Gpt(ModuleContext ctx, GptConfig c) {
    this.config = c;
    Trunk trunk = child("transformer", new Trunk());
    units.add(new Unit("transformer.embed", "transformer.", trunk.addInline("embed", new Embed(ctx, c))));
    List<GptBlock> blocks = new ArrayList<>();
    for (int i = 0; i < c.nLayer(); i++) blocks.add(new GptBlock(ctx, c));
    units.addAll(trunk.add("h", Sequential.of(blocks)).units("transformer.h."));
    units.add(new Unit("transformer.ln_f", "transformer.ln_f.", trunk.add("ln_f", new LayerNorm(ctx, c.nEmbd(), 1e-5, false))));
    units.add(new Unit("lm_head", "lm_head.", child("lm_head", new Linear(ctx, c.nEmbd(), c.vocabSize(), false))));
    initWeights(ctx, c);
  }

  /** GPT-2's init: N(0, .02) weights, zero biases, and N(0, .02/√(2·layers)) on the residual projections. */
  private void initWeights(ModuleContext ctx, GptConfig c) {
    double projStd = 0.02 / Math.sqrt(2.0 * c.nLayer());
    namedParameters().forEach((name, p) -> {
      if (name.endsWith("c_proj.weight")) p.backend().kernels().copy(Init.normal(ctx, 0, projStd, p.shape().toArray()), p);
      else if (p.rank() == 2 && !name.contains("wte") && !name.contains("wpe")) p.backend().kernels().copy(Init.normal(ctx, 0, 0.02, p.shape().toArray()), p);
      else if (name.endsWith(".bias") && !name.contains("ln_")) p.backend().kernels().fill(p, 0);
    });
  }

  public GptConfig config() { return config; }

  /** The transformer blocks (transformer.h.*), in order. */
  public List<GptBlock> blocks() {
    List<GptBlock> out = new ArrayList<>();
    for (Module m : trunk().children().get("h").children().values()) out.add((GptBlock) m);
    return out;
  }

  /** The token embedding transformer.wte, while still a plain Embedding. */
  public Embedding wte() { return Layers.embedding(trunk().children().get("embed"), "wte"); }

  /** The LM head, while still a plain Linear. */
  public Linear lmHead() { return Layers.linear(this, "lm_head"); }

  private Module trunk() { return children().get("transformer"); }

  /** A plan replaced a top-level unit's module (lm_head): the unit list follows, so forward and units agree. */
  @Override protected void onChildReplaced(String name, Module replacement) {
    units.replaceAll(u -> u.name().equals(name) ? new Unit(u.name(), u.prefix(), replacement) : u);
  }

  @Override public List<Unit> units() { return units; }
}
