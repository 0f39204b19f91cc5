package io.colossal4j.train.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.train.config.CheckpointConfig.Resume;
import io.colossal4j.train.config.ParallelConfig.PipelineSchedule;
import io.colossal4j.train.config.ParallelConfig.TensorParallel;
import io.colossal4j.train.config.ParallelConfig.ZeroStage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** YAML to typed records: defaults, overrides, round trip, and every kind of bad input named precisely. */
class ConfigsTest {
  static final Path EXAMPLES = findExamples();

  static Path findExamples() {
    for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent())
      if (Files.isDirectory(p.resolve("examples")) && Files.exists(p.resolve("mvnw"))) return p.resolve("examples");
    throw new IllegalStateException("examples/ not found above " + Path.of("").toAbsolutePath());
  }

  static RunConfig parse(String yaml, String... sets) { return Configs.parse(yaml, "test.yaml", List.of(sets)); }

  static String error(String yaml, String... sets) {
    return assertThrows(ConfigException.class, () -> parse(yaml, sets)).getMessage();
  }

  @Test void defaultJobExampleLoads() {
    RunConfig c = Configs.load(EXAMPLES.resolve("vit-fashion-mnist.yaml"), List.of());
    assertEquals("vit-fashion-mnist", c.name());
    assertEquals(128, c.train().globalBatchSize());
    var adamw = assertInstanceOf(OptimizerConfig.AdamW.class, c.optimizer());
    assertEquals(2e-3, adamw.lr());
    assertEquals(List.of(0.9, 0.999), adamw.betas());
    assertEquals(new ScheduleConfig.Cosine(200, 1e-5, 0), c.schedule());
    assertEquals(DataConfig.Name.FASHION_MNIST, c.data().name());
    assertEquals(Optional.of(Path.of("/usr/share/datasets/fashion-mnist")), c.data().path());
    assertEquals(Path.of("runs/vit-fashion-mnist/checkpoints"), c.checkpointDir());
    assertEquals(new RunConfig.BatchPlan(2, 64, 1, 1, 64), c.plan(2));   // the default job runs on 2 data-parallel ranks
  }

  @Test void hybridExampleMatchesTheHandbookShape() {
    RunConfig c = Configs.load(EXAMPLES.resolve("vit-hybrid-tp2-pp2.yaml"), List.of());
    assertEquals(new TensorParallel(TensorParallel.Mode.ONE_D, 2, 1), c.parallel().tensor());
    assertEquals(2, c.parallel().pipeline());
    assertEquals(new PipelineSchedule.OneFOneB(), c.parallel().schedule());
    assertEquals(ZeroStage.NONE, c.parallel().zero());
    assertEquals(Optional.of(MemorySize.parse("23.3GiB")), c.device().maxMemory());
    assertEquals(1, c.parallel().dataSize(4));
    assertEquals(new RunConfig.BatchPlan(1, 32, 1, 2, 16), c.plan(4));
    assertEquals(new RunConfig.BatchPlan(2, 16, 1, 2, 8), c.plan(8));
    var e = assertThrows(ConfigException.class, () -> c.plan(6));
    assertTrue(e.getMessage().contains("world size 6 is not divisible by tensor × pipeline = 2 × 2"), e.getMessage());
  }

  @Test void emptyDocumentIsTheDefaults() {
    assertEquals(RunConfig.defaults(), parse(""));
    assertEquals(RunConfig.defaults(), Configs.load(null, List.of()));
  }

  @Test void resolvedConfigRoundTrips() {
    for (String f : List.of("vit-fashion-mnist.yaml", "vit-hybrid-tp2-pp2.yaml")) {
      RunConfig c = Configs.load(EXAMPLES.resolve(f), List.of("--set", "optimizer=lamb").subList(1, 2));
      String yaml = Configs.toYaml(c);
      assertEquals(c, parse(yaml), yaml);
    }
    assertTrue(Configs.toYaml(RunConfig.defaults()).contains("name: adamw"));
  }

  @Test void setOverridesAreTypedBySchema() {
    RunConfig c = parse("optimizer: {name: adamw, lr: 0.001}\nmodel: {name: vit_tiny_28}",
        "train.epochs=3", "optimizer.betas=[0.8, 0.9]", "name=123", "model.name=resnet18", "parallel.zero=2",
        "parallel.schedule.name=interleaved", "parallel.pipeline=2", "checkpoint.resume=latest", "device.max_memory=512MiB");
    assertEquals(3, c.train().epochs());
    assertEquals(List.of(0.8, 0.9), ((OptimizerConfig.AdamW) c.optimizer()).betas());
    assertEquals(1e-3, c.optimizer().lr());
    assertEquals("123", c.name(), "a string key keeps numeric-looking text as text");
    assertEquals(new io.colossal4j.models.ModelSpec("resnet18", 0, 0, 0, 0, 0), c.model().spec());
    assertEquals(ZeroStage.SHARD_GRADIENTS, c.parallel().zero());
    assertEquals(new PipelineSchedule.Interleaved(2), c.parallel().schedule());
    assertEquals(new Resume.Latest(), c.checkpoint().resume());
    assertEquals(512L << 20, c.device().maxMemory().orElseThrow().bytes());
    // A variant replaced wholesale, then one of its keys set.
    RunConfig sgd = parse("optimizer: {name: adamw, betas: [0.9, 0.95]}", "optimizer=sgd", "optimizer.momentum=0.8");
    assertEquals(new OptimizerConfig.Sgd(0.1, 0.8, 0, false, 5e-4, false), sgd.optimizer());
  }

  @Test void unknownKeysSuggestTheClosest() {
    String m = error("train:\n  epoch: 3\n");
    assertTrue(m.startsWith("train.epoch: unknown key; did you mean 'train.epochs'?"), m);
    assertTrue(m.contains("valid keys under train: global_batch_size, epochs"), m);
    m = error("", "optimzer.lr=0.1");
    assertTrue(m.startsWith("optimzer: unknown key; did you mean 'optimizer'?") && m.contains("with --set optimzer.lr=0.1"), m);
    m = error("optimizer: {name: sgd, betas: [0.9, 0.99]}");
    assertTrue(m.startsWith("optimizer.betas: unknown key") && m.contains("valid keys under optimizer: lr, momentum"), m);
    m = error("optimizer: adamww");
    assertTrue(m.contains("'adamww' is not one of sgd, adam, adamw, lamb, lars; did you mean 'adamw'?"), m);
    m = error("model: {name: vit_tiny28}");
    assertTrue(m.startsWith("model.name: 'vit_tiny28' is not in the model zoo; did you mean 'vit_tiny_28'?"), m);
    m = error("train: {precision: bf61}");
    assertTrue(m.contains("train.precision: 'bf61' is not one of fp32, bf16, fp16; did you mean 'bf16'?"), m);
  }

  @Test void wrongTypesAndRangesNameKeyValueAndValid() {
    assertEquals("train.global_batch_size: expected an integer, got the string 'lots' (in test.yaml)", error("train: {global_batch_size: lots}"));
    assertEquals("train.global_batch_size: got 0; valid: an integer >= 1 (in test.yaml with --set train.global_batch_size=0)",
        error("", "train.global_batch_size=0"));
    assertTrue(error("optimizer: {name: adamw, betas: [0.9]}").startsWith("optimizer.betas: got [0.9]; valid: two numbers in [0, 1)"));
    assertTrue(error("optimizer: {name: sgd, lr: -1}").startsWith("optimizer.lr: got -1.0; valid: a finite number > 0"));
    assertTrue(error("parallel: {tensor: {mode: 2d, size: 2}}").startsWith("parallel.tensor.size: got 2; valid: a square"));
    assertTrue(error("train: {global_batch_size: 10, gradient_accumulation: 3}").startsWith("train.gradient_accumulation: global_batch_size 10 is not divisible"));
    assertTrue(error("device: {max_memory: 23.3 gigs}").startsWith("device.max_memory: got '23.3 gigs'; valid: a size such as 23.3GiB"));
    assertTrue(error("train: {epochs: 1.5}").startsWith("train.epochs: expected an integer, got the number 1.5"));
    assertTrue(error("train: {epochs: }").startsWith("train.epochs: needs a value (remove the key to use the default, 10)"));
    assertTrue(error("parallel: {pipeline: 3, num_micro_batches: 4, schedule: interleaved}").startsWith("parallel.num_micro_batches: the interleaved schedule"));
    assertTrue(error("name: 'my run'").startsWith("name: got 'my run'; valid: letters"));
    assertTrue(error("train: [1, 2]").startsWith("train: expected a mapping of keys (global_batch_size, epochs"));
    String m = error("parallel: {data: 2}\ntrain: {global_batch_size: 7}");
    assertTrue(m.contains("global batch 7 does not divide into 2 data-parallel ranks"), m);
    assertTrue(error("data: {name: image_folder}").startsWith("data.path: data.name image_folder needs data.path"));
  }

  @Test void badDocumentsAndArguments() {
    assertTrue(error("train: {epochs: 3\n").contains("is not valid YAML"));
    assertTrue(error("seed: 1\nseed: 2\n").contains("is not valid YAML"), "duplicate keys are rejected");
    assertTrue(error("- 1\n- 2\n").contains("top level must be a mapping"));
    assertTrue(error("", "train.epochs").contains("--set expects key.path=value"));
    var e = assertThrows(ConfigException.class, () -> Configs.load(Path.of("no/such.yaml"), List.of()));
    assertTrue(e.getMessage().contains("config file not found"), e.getMessage());
    assertEquals(List.of("a=1", "b.c=x"), Configs.setsFrom(List.of("cfg.yaml", "--set", "a=1", "--set=b.c=x")));
  }

  @Test void memorySizes() {
    assertEquals(25018184499L, MemorySize.parse("23.3GiB").bytes());
    assertEquals(2_000_000_000L, MemorySize.parse("2GB").bytes());
    assertEquals("23.3GiB", MemorySize.parse("23.3GiB").toString());
    assertEquals("512MiB", new MemorySize(512L << 20).toString());
    assertEquals("1000", new MemorySize(1000).toString());
  }

  @Test void editDistance() {
    assertEquals(1, Suggest.distance("epoch", "epochs"));
    assertEquals(1, Suggest.distance("optmiizer", "optimizer") - 0, "a transposition is one edit");
    assertEquals(Optional.empty(), Suggest.closest("zzz", List.of("epochs", "seed")));
  }
}
