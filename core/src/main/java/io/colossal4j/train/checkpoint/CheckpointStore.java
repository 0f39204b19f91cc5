package io.colossal4j.train.checkpoint;

import io.colossal4j.backend.Backend;
import io.colossal4j.tensor.MemoryCategory;
import io.colossal4j.tensor.Tensor;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * A directory of checkpoints, one subdirectory per saved step:
 * <pre>
 *   dir/step-000000500/model.safetensors      the model state dict (readable by PyTorch/timm)
 *                      optimizer.safetensors  the optimizer state
 *                      state.json             {@link TrainingState}
 * </pre>
 * A save writes everything into a hidden sibling ({@code .step-000000500.partial}), forces it to disk and
 * renames it into place, so a crash at any moment leaves the earlier checkpoints untouched and never a
 * half-written {@code step-*} directory. Leftover partial directories are removed by the next save. The newest
 * {@code keep} checkpoints are kept. Not thread-safe: one writer per directory.
 */
public final class CheckpointStore {
  static final String MODEL = "model.safetensors";
  static final String OPTIMIZER = "optimizer.safetensors";
  static final String STATE = "state.json";
  private static final String PREFIX = "step-";

  private final Path dir;
  private final int keep;
  private final WriteObserver observer;

  public CheckpointStore(Path dir, int keep) { this(dir, keep, WriteObserver.NONE); }

  CheckpointStore(Path dir, int keep, WriteObserver observer) {
    if (keep < 1) throw new IllegalArgumentException("checkpoint keep must be >= 1, got " + keep);
    this.dir = dir;
    this.keep = keep;
    this.observer = observer;
  }

  public Path dir() { return dir; }

  /** Saves {@code c} as {@code step-<c.state().step()>}; returns its directory. */
  public Path save(Checkpoint c) {
    String name = "%s%09d".formatted(PREFIX, c.state().step());
    Path target = dir.resolve(name);
    Path partial = dir.resolve("." + name + ".partial");
    try {
      Files.createDirectories(dir);
      removeLeftovers();
      Files.createDirectories(partial);
      Map<String, String> meta = new java.util.LinkedHashMap<>();
      meta.put("format", "pt"); // what timm/transformers expect of a PyTorch state dict
      meta.put("model", c.state().model());
      Safetensors.write(partial.resolve(MODEL), c.model(), meta, observer);
      Safetensors.write(partial.resolve(OPTIMIZER), c.optimizer(), meta, observer);
      byte[] state = c.state().toJson().getBytes(StandardCharsets.UTF_8);
      AtomicFiles.write(partial.resolve(STATE), ch -> ch.write(java.nio.ByteBuffer.wrap(state)));
      observer.written(partial.resolve(STATE), state.length);
      AtomicFiles.fsyncDirectory(partial);
      if (Files.exists(target)) deleteTree(target); // re-saving a step (after a resume): the new one wins
      AtomicFiles.move(partial, target);
      AtomicFiles.fsyncDirectory(dir);
      prune();
      return target;
    } catch (IOException | CheckpointException e) {
      try {
        deleteTree(partial);
      } catch (IOException ignored) {
        // the next save removes it
      }
      throw new CheckpointException("could not save checkpoint " + target + ": " + e.getMessage()
          + " (earlier checkpoints in " + dir + " are intact)", e);
    }
  }

  /** Complete checkpoints, oldest first. */
  public List<Path> list() {
    if (!Files.isDirectory(dir)) return List.of();
    try (Stream<Path> s = Files.list(dir)) {
      return s.filter(p -> p.getFileName().toString().matches(PREFIX + "\\d+") && Files.isRegularFile(p.resolve(STATE)))
          .sorted(Comparator.comparing(p -> p.getFileName().toString())).toList();
    } catch (IOException e) {
      throw new CheckpointException("could not list checkpoints in " + dir + ": " + e.getMessage(), e);
    }
  }

  public Optional<Path> latest() {
    List<Path> all = list();
    return all.isEmpty() ? Optional.empty() : Optional.of(all.getLast());
  }

  /** Loads a checkpoint directory; its tensors land on {@code backend}. */
  public static Checkpoint load(Path checkpoint, Backend backend) {
    if (!Files.isDirectory(checkpoint))
      throw new CheckpointException("no checkpoint directory at " + checkpoint.toAbsolutePath()
          + " (a checkpoint is a step-NNNNNNNNN directory holding " + MODEL + ", " + OPTIMIZER + " and " + STATE + ")");
    Path statePath = checkpoint.resolve(STATE);
    String text;
    try {
      text = Files.readString(statePath);
    } catch (IOException e) {
      throw new CheckpointException("checkpoint " + checkpoint + " has no readable " + STATE + ": " + e.getMessage(), e);
    }
    TrainingState state = TrainingState.fromJson(statePath, text);
    Map<String, Tensor> model = Safetensors.read(checkpoint.resolve(MODEL), backend, MemoryCategory.PARAMETER).tensors();
    Map<String, Tensor> opt = Safetensors.read(checkpoint.resolve(OPTIMIZER), backend, MemoryCategory.OPTIMIZER_STATE).tensors();
    return new Checkpoint(model, opt, state);
  }

  private void prune() throws IOException {
    List<Path> all = list();
    for (int i = 0; i < all.size() - keep; i++) deleteTree(all.get(i));
  }

  private void removeLeftovers() throws IOException {
    try (Stream<Path> s = Files.list(dir)) {
      for (Path p : s.filter(p -> p.getFileName().toString().endsWith(".partial")).toList()) deleteTree(p);
    }
  }

  static void deleteTree(Path root) throws IOException {
    if (!Files.exists(root)) return;
    List<Path> paths = new ArrayList<>();
    try (Stream<Path> s = Files.walk(root)) {
      s.forEach(paths::add);
    }
    for (Path p : paths.reversed()) Files.deleteIfExists(p);
  }
}
