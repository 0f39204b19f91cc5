package io.colossal4j.train.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.backend.Backend;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.data.LoaderPosition;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Rng;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Checkpoint directories: round trip, retention, atomicity under a crash mid-save, and mismatch reports. */
class CheckpointStoreTest {
  static final Backend CPU = CpuBackend.reference();
  @TempDir Path tmp;

  static Checkpoint checkpoint(long step, float fill) {
    Map<String, Tensor> model = new LinkedHashMap<>();
    model.put("blocks.0.attn.qkv.weight", Tensor.full(Shape.of(48, 16), DType.F32, CPU, fill));
    model.put("blocks.0.attn.qkv.bias", Tensor.full(Shape.of(48), DType.F32, CPU, -fill));
    model.put("head.weight", Tensor.full(Shape.of(10, 16), DType.BF16, CPU, fill / 2));
    Map<String, Tensor> opt = Map.of("state.head.weight.exp_avg", Tensor.full(Shape.of(10, 16), DType.F32, CPU, step),
        "state.step", Tensor.scalar(step, DType.I64, CPU));
    var rngs = Map.of("model", new Rng.State(42, step * 7), "data", new Rng.State(0xFFFF_FFFF_FFFF_FFF1L, step));
    var state = new TrainingState("vit_test", step, step + 1, new LoaderPosition((int) step / 10, (int) step % 10),
        rngs, Map.of("loss_scale", 65536.0, "best_accuracy", 0.875));
    return new Checkpoint(model, opt, state);
  }

  @Test void roundTripAndRetention() {
    CheckpointStore store = new CheckpointStore(tmp.resolve("ckpt"), 2);
    for (long s : new long[] {5, 10, 15}) store.save(checkpoint(s, s / 10f));
    assertEquals(List.of("step-000000010", "step-000000015"), store.list().stream().map(p -> p.getFileName().toString()).toList());
    Checkpoint c = CheckpointStore.load(store.latest().orElseThrow(), CPU);
    Checkpoint expected = checkpoint(15, 1.5f);
    assertEquals(expected.state(), c.state());
    assertEquals(List.copyOf(expected.model().keySet()), List.copyOf(c.model().keySet()));
    for (var e : expected.model().entrySet())
      assertArrayEquals(e.getValue().toDoubleArray(), c.model().get(e.getKey()).toDoubleArray(), e.getKey());
    assertEquals(15.0, c.optimizer().get("state.step").item());
    assertEquals(DType.I64, c.optimizer().get("state.step").dtype());
  }

  @Test void exceptionMidSaveLeavesThePreviousCheckpoint() {
    Path dir = tmp.resolve("ckpt");
    new CheckpointStore(dir, 3).save(checkpoint(100, 1f));
    var failing = new CheckpointStore(dir, 3, (file, bytes) -> {
      if (file.getFileName().toString().equals(CheckpointStore.MODEL) && bytes > 1000) throw new IOException("disk full (simulated)");
    });
    var e = assertThrows(CheckpointException.class, () -> failing.save(checkpoint(200, 2f)));
    assertTrue(e.getMessage().contains("intact"), e.getMessage());
    assertEquals(List.of(dir.resolve("step-000000100")), new CheckpointStore(dir, 3).list());
    Checkpoint c = CheckpointStore.load(dir.resolve("step-000000100"), CPU);
    assertEquals(100, c.state().step());
    assertEquals(1.0, c.model().get("blocks.0.attn.qkv.weight").toDoubleArray()[0]);
  }

  /** A real process killed (Runtime.halt) in the middle of writing model.safetensors of its second save. */
  @Test void processDeathMidSaveLeavesThePreviousCheckpoint() throws Exception {
    Path dir = tmp.resolve("ckpt");
    String java = ProcessHandle.current().info().command().orElse("java");
    List<String> cmd = new ArrayList<>(List.of(java, "-cp", System.getProperty("java.class.path"),
        CrashingSaver.class.getName(), dir.toString()));
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes());
    assertTrue(p.waitFor(60, TimeUnit.SECONDS));
    assertEquals(CrashingSaver.HALT_CODE, p.exitValue(), out);
    try (Stream<Path> s = Files.list(dir)) {
      assertTrue(s.anyMatch(f -> f.getFileName().toString().endsWith(".partial")), "the crash left a partial directory");
    }
    CheckpointStore store = new CheckpointStore(dir, 3);
    assertEquals(List.of(dir.resolve("step-000000001")), store.list());
    assertEquals(1, CheckpointStore.load(store.latest().orElseThrow(), CPU).state().step());
    store.save(checkpoint(3, 3f)); // the next save cleans up the leftover
    try (Stream<Path> s = Files.list(dir)) {
      assertEquals(List.of("step-000000001", "step-000000003"), s.map(f -> f.getFileName().toString()).sorted().toList());
    }
  }

  /** Entry point of the child process used above. */
  static final class CrashingSaver {
    static final int HALT_CODE = 77;

    public static void main(String[] args) {
      Path dir = Path.of(args[0]);
      new CheckpointStore(dir, 3).save(checkpoint(1, 1f));
      new CheckpointStore(dir, 3, (file, bytes) -> {
        if (file.getFileName().toString().equals(CheckpointStore.MODEL) && bytes > 100) Runtime.getRuntime().halt(HALT_CODE);
      }).save(checkpoint(2, 2f));
    }
  }

  @Test void checkpointOfAnotherModelNamesTheParameters() {
    Checkpoint saved = checkpoint(1, 1f);
    Map<String, Tensor> live = new LinkedHashMap<>();
    live.put("blocks.0.attn.qkv.weight", Tensor.zeros(Shape.of(96, 32), DType.F32, CPU));
    live.put("blocks.0.attn.qkv.bias", Tensor.zeros(Shape.of(48), DType.F32, CPU));
    live.put("fc.weight", Tensor.zeros(Shape.of(10, 16), DType.F32, CPU));
    var e = assertThrows(CheckpointException.class, () -> StateDicts.copyInto(live, saved.model(), "checkpoint step-1"));
    String m = e.getMessage();
    assertTrue(m.contains("1 missing from the checkpoint: fc.weight"), m);
    assertTrue(m.contains("1 in the checkpoint but not in the model: head.weight"), m);
    assertTrue(m.contains("blocks.0.attn.qkv.weight (saved F32[48, 16], model F32[96, 32])"), m);
    m = assertThrows(CheckpointException.class, () -> saved.copyModelInto(live, "resnet18")).getMessage();
    assertTrue(m.startsWith("this checkpoint (of model vit_test) was made for another model than resnet18 and does not match this model:"), m);
    assertEquals(0.0, live.get("blocks.0.attn.qkv.bias").toDoubleArray()[0], "nothing copied on a mismatch");
  }

  @Test void copyIntoFillsLiveTensors() {
    Checkpoint saved = checkpoint(1, 0.25f);
    Map<String, Tensor> live = new LinkedHashMap<>();
    saved.model().forEach((k, v) -> live.put(k, Tensor.zeros(v.shape(), v.dtype(), CPU)));
    StateDicts.copyInto(live, saved.model(), "test");
    for (var e : live.entrySet()) assertArrayEquals(saved.model().get(e.getKey()).toDoubleArray(), e.getValue().toDoubleArray());
  }

  @Test void missingOrCorruptStateIsReported() throws IOException {
    var e = assertThrows(CheckpointException.class, () -> CheckpointStore.load(tmp.resolve("nope"), CPU));
    assertTrue(e.getMessage().contains("no checkpoint directory"), e.getMessage());
    Path p = new CheckpointStore(tmp, 1).save(checkpoint(4, 1f));
    Files.writeString(p.resolve(CheckpointStore.STATE), "{\"format\":1,\"step\":");
    e = assertThrows(CheckpointException.class, () -> CheckpointStore.load(p, CPU));
    assertTrue(e.getMessage().contains("state.json is corrupt"), e.getMessage());
    SafetensorsTest.truncate(p.resolve(CheckpointStore.MODEL), 200);
    Files.writeString(p.resolve(CheckpointStore.STATE), checkpoint(4, 1f).state().toJson());
    e = assertThrows(CheckpointException.class, () -> CheckpointStore.load(p, CPU));
    assertTrue(e.getMessage().contains("model.safetensors is cut short"), e.getMessage());
  }
}
